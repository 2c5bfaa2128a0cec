//! Repository rows: clone or check out with the `git` CLI into a temporary folder (removed on
//! success, failure and panic, since [`tempfile::TempDir`] removes it on drop), list the tracked
//! files (so `.gitignore`d files never count), skip vendored and build folders, index the rest.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use queue::{FailureKind, JobFailure};

use super::file::IndexConfig;
use super::payload::RepositoryPayload;
use super::work::{failure_kind, file_result, Work};
use crate::index::Indexer;
use crate::jobs::FileResult;

/// Folders never indexed, wherever they appear in a repository.
pub const SKIPPED_DIRS: [&str; 6] = ["vendor", "node_modules", "target", "dist", "build", ".git"];

/// Errors of checking out a repository.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// The repository location or the ref is not acceptable.
    #[error("invalid repository request: {0}")]
    Invalid(String),
    /// `git` could not be run at all.
    #[error("could not run git: {0}")]
    Spawn(#[from] std::io::Error),
    /// A git command failed.
    #[error("git {command} failed: {stderr}")]
    Git {
        /// Which command.
        command: &'static str,
        /// What git printed.
        stderr: String,
    },
}

impl CheckoutError {
    /// A clone may fail for network reasons (retry); a bad request or unknown ref will not change.
    fn kind(&self) -> FailureKind {
        match self {
            CheckoutError::Git {
                command: "clone", ..
            }
            | CheckoutError::Spawn(_) => FailureKind::Transient,
            _ => FailureKind::Permanent,
        }
    }
}

/// Checks a repository location and ref before git sees them (no option injection).
pub fn validate_request(repository: &str, git_ref: &str) -> Result<(), CheckoutError> {
    let bad = |value: &str| value.is_empty() || value.starts_with('-') || value.contains('\0');
    if bad(repository) || repository.len() > 4096 {
        return Err(CheckoutError::Invalid(
            "repository must be a local path or a git URL, not starting with '-'".into(),
        ));
    }
    if bad(git_ref)
        || git_ref.len() > 256
        || git_ref.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CheckoutError::Invalid(
            "ref must be a branch, tag or commit name without spaces, not starting with '-'".into(),
        ));
    }
    Ok(())
}

/// Whether a repository path lies in a vendored or build folder.
pub fn is_skipped_path(path: &str) -> bool {
    path.split('/')
        .any(|component| SKIPPED_DIRS.contains(&component))
}

/// Indexes a repository row; the checkout folder is gone when this returns (or unwinds).
pub(crate) async fn index_repository(
    indexer: &Indexer,
    config: &IndexConfig,
    request: &RepositoryPayload,
) -> Work {
    if let Err(error) = validate_request(&request.repository, &request.git_ref) {
        return Work::failed(JobFailure::permanent(error.to_string()));
    }
    let scratch = match make_scratch_dir(config.scratch_dir.as_deref()) {
        Ok(scratch) => scratch,
        Err(error) => {
            return Work::failed(JobFailure::transient(format!(
                "could not create a checkout folder: {error}"
            )))
        }
    };
    let checkout = scratch.path().join("checkout");
    let (repository, git_ref, target) = (
        request.repository.clone(),
        request.git_ref.clone(),
        checkout.clone(),
    );
    let listed =
        tokio::task::spawn_blocking(move || checkout_and_list(&repository, &git_ref, &target))
            .await;
    let files = match listed {
        Ok(Ok(files)) => files,
        Ok(Err(error)) => {
            tracing::warn!(%error, "checkout failed");
            let message = error.to_string();
            return Work::failed(JobFailure {
                kind: error.kind(),
                message,
            });
        }
        Err(error) => {
            return Work::failed(JobFailure::transient(format!(
                "checkout task failed: {error}"
            )))
        }
    };
    tracing::info!(files = files.len(), "repository checked out");
    let mut results = Vec::with_capacity(files.len());
    for path in &files {
        match index_checked_out_file(indexer, config, &request.project, &checkout, path).await {
            Ok(result) => results.push(result),
            Err(failure) => return Work::failed(failure),
        }
    }
    drop(scratch);
    Work {
        files_total: Some(results.len()),
        results,
        failure: None,
    }
}

/// Indexes one file of a checkout; `Err` only for a transient failure that retries the row.
async fn index_checked_out_file(
    indexer: &Indexer,
    config: &IndexConfig,
    project: &str,
    checkout: &Path,
    path: &str,
) -> Result<FileResult, JobFailure> {
    let content = match tokio::fs::read(checkout.join(path)).await {
        Ok(content) => content,
        Err(error) => return Ok(FileResult::failed(path, format!("unreadable: {error}"))),
    };
    if content.len() > config.max_file_bytes {
        return Ok(FileResult::skipped(
            path,
            format!(
                "too_large: file is {} bytes, over the {}-byte limit",
                content.len(),
                config.max_file_bytes
            ),
        ));
    }
    match indexer.index_file(project, path, &content).await {
        Ok(outcome) => Ok(file_result(path, outcome)),
        Err(error) => match failure_kind(&error) {
            FailureKind::Permanent => Ok(FileResult::failed(path, error.to_string())),
            kind => Err(JobFailure {
                kind,
                message: error.to_string(),
            }),
        },
    }
}

fn make_scratch_dir(parent: Option<&Path>) -> std::io::Result<TempDir> {
    match parent {
        Some(parent) => {
            std::fs::create_dir_all(parent)?;
            tempfile::Builder::new()
                .prefix("qv-repo-")
                .tempdir_in(parent)
        }
        None => tempfile::Builder::new().prefix("qv-repo-").tempdir(),
    }
}

/// Clones `repository` into `target`, checks out `git_ref` and lists the regular tracked files
/// outside skipped folders.
pub fn checkout_and_list(
    repository: &str,
    git_ref: &str,
    target: &Path,
) -> Result<Vec<String>, CheckoutError> {
    validate_request(repository, git_ref)?;
    let target_str = target.to_string_lossy().into_owned();
    git(
        None,
        "clone",
        &[
            "clone",
            "--quiet",
            "--no-checkout",
            "--",
            repository,
            &target_str,
        ],
    )?;
    git(
        Some(target),
        "checkout",
        &["checkout", "--quiet", "--detach", git_ref, "--"],
    )?;
    let listing = git(Some(target), "ls-files", &["ls-files", "-z"])?;
    let mut files: Vec<String> = listing
        .split('\0')
        .filter(|path| !path.is_empty() && !is_skipped_path(path))
        .filter(|path| is_regular_file(&target.join(path)))
        .map(str::to_owned)
        .collect();
    files.sort();
    Ok(files)
}

/// A regular file, not a symlink (which could point outside the checkout) or a submodule.
fn is_regular_file(path: &PathBuf) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_file())
}

fn git(dir: Option<&Path>, command: &'static str, args: &[&str]) -> Result<String, CheckoutError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    let output = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh")
        .stdin(std::process::Stdio::null())
        .output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(CheckoutError::Git {
            command,
            stderr: stderr.trim().chars().take(1000).collect(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_and_build_folders_are_skipped() {
        assert!(is_skipped_path("vendor/lib.rs"));
        assert!(is_skipped_path("web/node_modules/x/index.js"));
        assert!(is_skipped_path("target/debug/build.rs"));
        assert!(!is_skipped_path("src/builder.rs"));
    }

    #[test]
    fn options_are_not_accepted_as_repository_or_ref() {
        assert!(validate_request("--upload-pack=evil", "main").is_err());
        assert!(validate_request("/tmp/repo", "-b").is_err());
        assert!(validate_request("/tmp/repo", "main branch").is_err());
        assert!(validate_request("/tmp/repo", "v1.0").is_ok());
    }
}
