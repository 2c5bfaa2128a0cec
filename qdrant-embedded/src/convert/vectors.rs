//! Dense vectors in and out. Only dense vectors are stored; the shape check happens here so a
//! wrong size is refused before it reaches the engine's write-ahead log.

use std::collections::HashMap;

use qdrant_client::qdrant::{self as grpc, vector, vector_output, vectors, vectors_output};
use qdrant_edge::{
    EdgeConfig, VectorInternal, VectorPersisted, VectorStructInternal, VectorStructPersisted,
};

use crate::error::ApiError;

/// Dense sizes per vector name ("" is the unnamed default vector).
pub(crate) struct VectorShape(HashMap<String, usize>);

impl VectorShape {
    pub(crate) fn of(config: &EdgeConfig) -> Self {
        Self(
            config
                .vectors
                .iter()
                .map(|(name, params)| (name.clone(), params.size))
                .collect(),
        )
    }

    /// Check a query or stored vector against the named vector's size.
    pub(crate) fn check(&self, name: &str, vector: &[f32]) -> Result<(), ApiError> {
        let expected = self
            .0
            .get(name)
            .ok_or_else(|| ApiError::BadInput(format!("Not existing vector name error: {name}")))?;
        if *expected != vector.len() {
            return Err(ApiError::BadInput(format!(
                "Vector dimension error: expected dim: {expected}, got {}",
                vector.len()
            )));
        }
        Ok(())
    }
}

/// A dense vector from gRPC input, whether in the current or the deprecated layout.
pub(crate) fn dense_from_grpc(input: grpc::Vector) -> Result<Vec<f32>, ApiError> {
    #[allow(deprecated)]
    let grpc::Vector {
        data,
        indices,
        vectors_count,
        vector,
    } = input;
    match vector {
        Some(vector::Vector::Dense(dense)) => Ok(dense.data),
        Some(_) => Err(ApiError::Unsupported(
            "Sparse, multi-dense and inference vectors".to_owned(),
        )),
        None if indices.is_some() || vectors_count.is_some() => Err(ApiError::Unsupported(
            "Sparse and multi-dense vectors".to_owned(),
        )),
        None => Ok(data),
    }
}

pub(crate) fn vector_struct_from_grpc(
    input: Option<grpc::Vectors>,
    shape: &VectorShape,
) -> Result<VectorStructPersisted, ApiError> {
    match input.and_then(|v| v.vectors_options) {
        Some(vectors::VectorsOptions::Vector(single)) => {
            let dense = dense_from_grpc(single)?;
            shape.check("", &dense)?;
            Ok(VectorStructPersisted::Single(dense))
        }
        Some(vectors::VectorsOptions::Vectors(named)) => {
            let mut out = HashMap::with_capacity(named.vectors.len());
            for (name, vector) in named.vectors {
                let dense = dense_from_grpc(vector)?;
                shape.check(&name, &dense)?;
                out.insert(name, VectorPersisted::Dense(dense));
            }
            Ok(VectorStructPersisted::Named(out))
        }
        None => Err(ApiError::BadInput("Point has no vectors".to_owned())),
    }
}

fn dense_output(data: Vec<f32>) -> grpc::VectorOutput {
    #[allow(deprecated)]
    grpc::VectorOutput {
        data: Vec::new(),
        indices: None,
        vectors_count: None,
        vector: Some(vector_output::Vector::Dense(grpc::DenseVector { data })),
    }
}

pub(crate) fn vectors_to_grpc(
    vectors: Option<VectorStructInternal>,
) -> Option<grpc::VectorsOutput> {
    let options = match vectors? {
        VectorStructInternal::Single(dense) => {
            vectors_output::VectorsOptions::Vector(dense_output(dense))
        }
        VectorStructInternal::Named(mut named) => {
            // The unnamed default vector alone reads back as a plain vector, as from Qdrant.
            if named.len() == 1 {
                if let Some(VectorInternal::Dense(dense)) = named.remove("") {
                    return Some(grpc::VectorsOutput {
                        vectors_options: Some(vectors_output::VectorsOptions::Vector(
                            dense_output(dense),
                        )),
                    });
                }
            }
            let vectors = named
                .into_iter()
                .filter_map(|(name, vector)| match vector {
                    VectorInternal::Dense(dense) => Some((name, dense_output(dense))),
                    _ => None,
                })
                .collect();
            vectors_output::VectorsOptions::Vectors(grpc::NamedVectorsOutput { vectors })
        }
        VectorStructInternal::MultiDense(_) => return None,
    };
    Some(grpc::VectorsOutput {
        vectors_options: Some(options),
    })
}
