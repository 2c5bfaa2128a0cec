//! What a test expects a collection to hold, and a check of every point against it.

use std::collections::BTreeMap;

use qdrant_client::qdrant::{
    point_id::PointIdOptions, vector_output, vectors_output, CountPointsBuilder,
    CreateCollectionBuilder, DeletePointsBuilder, Distance, GetPointsBuilder, PointId, PointStruct,
    PointsIdsList, RetrievedPoint, UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant};
use serde_json::{json, Value as Json};

/// A point id as the tests name them: numeric or UUID text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Id {
    Num(u64),
    Uuid(String),
}

impl Id {
    fn grpc(&self) -> PointId {
        match self {
            Id::Num(num) => PointId::from(*num),
            Id::Uuid(uuid) => PointId::from(uuid.clone()),
        }
    }

    fn of(point: &RetrievedPoint) -> Option<Id> {
        match point.id.as_ref()?.point_id_options.as_ref()? {
            PointIdOptions::Num(num) => Some(Id::Num(*num)),
            PointIdOptions::Uuid(uuid) => Some(Id::Uuid(uuid.clone())),
        }
    }
}

/// Every point a collection must hold after the writes the server acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    pub points: BTreeMap<Id, (Vec<f32>, Json)>,
}

/// Dimension of the test vectors. Euclid distance keeps vectors exactly as written (Cosine
/// would normalise them).
pub const DIM: u64 = 8;

pub async fn create_collection(client: &Qdrant, name: &str) -> anyhow::Result<()> {
    client
        .create_collection(
            CreateCollectionBuilder::new(name)
                .vectors_config(VectorParamsBuilder::new(DIM, Distance::Euclid)),
        )
        .await?;
    Ok(())
}

/// The `i`-th test point of round `round`: a numeric id for even `i`, a UUID for odd ones.
pub fn test_point(i: u64, round: u64) -> (Id, Vec<f32>, Json) {
    let id = if i.is_multiple_of(2) {
        Id::Num(i)
    } else {
        Id::Uuid(format!("00000000-0000-4000-8000-{i:012x}"))
    };
    let vector = (0..DIM)
        .map(|d| (i * 31 + d * 7 + round * 13) as f32 / 17.0)
        .collect();
    let payload = json!({
        "i": i,
        "round": round,
        "group": i % 5,
        "text": format!("punkt {i} – runde {round}"),
        "nested": { "tags": ["a", i.to_string()], "ok": true },
    });
    (id, vector, payload)
}

impl Expected {
    /// Upsert `points` with `wait=true`; once acknowledged they are expected.
    pub async fn upsert(
        &mut self,
        client: &Qdrant,
        collection: &str,
        points: Vec<(Id, Vec<f32>, Json)>,
    ) -> anyhow::Result<()> {
        let grpc_points = points
            .iter()
            .map(|(id, vector, payload)| {
                Ok(PointStruct::new(
                    id.grpc(),
                    vector.clone(),
                    Payload::try_from(payload.clone())?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        client
            .upsert_points(UpsertPointsBuilder::new(collection, grpc_points).wait(true))
            .await?;
        for (id, vector, payload) in points {
            self.points.insert(id, (vector, payload));
        }
        Ok(())
    }

    /// Delete `ids` with `wait=true`; once acknowledged they must stay gone.
    pub async fn delete(
        &mut self,
        client: &Qdrant,
        collection: &str,
        ids: Vec<Id>,
    ) -> anyhow::Result<()> {
        let list = PointsIdsList {
            ids: ids.iter().map(Id::grpc).collect(),
        };
        client
            .delete_points(DeletePointsBuilder::new(collection).points(list).wait(true))
            .await?;
        for id in ids {
            self.points.remove(&id);
        }
        Ok(())
    }

    /// Check that `collection` holds exactly the expected points: ids, vectors and payloads.
    pub async fn verify(&self, client: &Qdrant, collection: &str) -> anyhow::Result<()> {
        let count = client
            .count(CountPointsBuilder::new(collection).exact(true))
            .await?
            .result
            .map_or(0, |r| r.count);
        let ids: Vec<Id> = self.points.keys().cloned().collect();
        let mut found = BTreeMap::new();
        for chunk in ids.chunks(200) {
            let reply = client
                .get_points(
                    GetPointsBuilder::new(
                        collection,
                        chunk.iter().map(Id::grpc).collect::<Vec<_>>(),
                    )
                    .with_payload(true)
                    .with_vectors(true),
                )
                .await?;
            for point in reply.result {
                let id = Id::of(&point).ok_or_else(|| anyhow::anyhow!("a point without id"))?;
                let payload = Json::from(Payload::from(point.payload.clone()));
                found.insert(id, (dense(&point), payload));
            }
        }
        let missing: Vec<&Id> = ids.iter().filter(|id| !found.contains_key(id)).collect();
        anyhow::ensure!(
            missing.is_empty(),
            "{} of {} acknowledged points are missing, e.g. {:?}",
            missing.len(),
            ids.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        );
        for (id, (vector, payload)) in &self.points {
            let (got_vector, got_payload) = &found[id];
            anyhow::ensure!(
                got_vector.as_ref() == Some(vector),
                "point {id:?}: vector {got_vector:?}, expected {vector:?}"
            );
            anyhow::ensure!(
                got_payload == payload,
                "point {id:?}: payload {got_payload}, expected {payload}"
            );
        }
        anyhow::ensure!(
            count == self.points.len() as u64,
            "count is {count}, expected {} (deleted points came back?)",
            self.points.len()
        );
        Ok(())
    }
}

fn dense(point: &RetrievedPoint) -> Option<Vec<f32>> {
    match point.vectors.as_ref()?.vectors_options.as_ref()? {
        vectors_output::VectorsOptions::Vector(output) => match output.vector.as_ref()? {
            vector_output::Vector::Dense(dense) => Some(dense.data.clone()),
            _ => None,
        },
        vectors_output::VectorsOptions::Vectors(_) => None,
    }
}
