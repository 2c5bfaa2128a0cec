//! What a queue row of the reference service asks for.

use serde::{Deserialize, Serialize};

/// A queue row's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Task {
    /// Check out a repository and index its files.
    Repository(RepositoryPayload),
    /// Index one file sent in the request.
    File(FilePayload),
}

/// One file to index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePayload {
    /// The project.
    pub project: String,
    /// The file's path in the project.
    pub path: String,
    /// The file's text.
    pub content: String,
    /// The id of the HTTP request that queued it, for the worker's log lines (absent in rows
    /// queued before request ids existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A repository to check out and index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryPayload {
    /// The project.
    pub project: String,
    /// A local path or a git URL.
    pub repository: String,
    /// Branch, tag or commit to check out.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The id of the HTTP request that queued it, for the worker's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Task {
    /// The id of the HTTP request that queued this row, if it carries one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Task::Repository(repository) => repository.request_id.as_deref(),
            Task::File(file) => file.request_id.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_travels_in_the_payload() {
        let file: Task = serde_json::from_value(serde_json::json!(
            {"project": "p", "path": "a.rs", "content": "x", "request_id": "req-1"}
        ))
        .expect("file payload");
        assert_eq!(file.request_id(), Some("req-1"));
    }

    #[test]
    fn payloads_decode_into_their_task() {
        let file: Task = serde_json::from_value(
            serde_json::json!({"project": "p", "path": "a.rs", "content": "x"}),
        )
        .expect("file payload");
        assert!(matches!(file, Task::File(_)));
        let repo: Task = serde_json::from_value(
            serde_json::json!({"project": "p", "repository": "/r", "ref": "main"}),
        )
        .expect("repository payload");
        assert!(matches!(repo, Task::Repository(_)));
        assert_eq!(repo.request_id(), None);
        assert!(serde_json::from_value::<Task>(serde_json::json!({"project": "p"})).is_err());
    }
}
