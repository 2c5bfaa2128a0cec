//! The `Qdrant` service: health check.

use qdrant_client::qdrant::{qdrant_server::Qdrant, HealthCheckReply, HealthCheckRequest};
use tonic::{Request, Response, Status};

use super::Api;
use crate::REPORTED_VERSION;

#[tonic::async_trait]
impl Qdrant for Api {
    async fn health_check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckReply>, Status> {
        Ok(Response::new(HealthCheckReply {
            title: "qdrant - vector search engine (embedded, qdrant-edge 0.7.2)".to_owned(),
            version: REPORTED_VERSION.to_owned(),
            commit: None,
        }))
    }
}
