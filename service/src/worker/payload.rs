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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(serde_json::from_value::<Task>(serde_json::json!({"project": "p"})).is_err());
    }
}
