//! Repository rows: check the location against the [`RepositoryPolicy`] (again: DNS may have
//! changed since the request), fetch only the ref asked for (shallow) into a temporary folder
//! (removed on success, failure and panic, since [`tempfile::TempDir`] removes it on drop),
//! check out that commit, list the tracked files (so `.gitignore`d files never count), skip
//! vendored and build folders, index the rest.
//!
//! git runs bounded ([`super::git`]): a deadline that kills it, a low-speed limit, a size cap
//! on what is fetched and on what is checked out. Clients see a short category
//! ([`CheckoutError`]), never git's own text.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use queue::{FailureKind, JobFailure};

use super::checkout::CheckoutError;
use super::file::IndexConfig;
use super::git::{Git, RunError};
use super::payload::RepositoryPayload;
use super::source::{RepositoryPolicy, Resolved, Source};
use super::versions::{Versioned, Versions};
use super::work::Work;
use crate::index::Indexer;
use crate::jobs::FileResult;

/// Folders never indexed, wherever they appear in a repository.
pub const SKIPPED_DIRS: [&str; 6] = ["vendor", "node_modules", "target", "dist", "build", ".git"];

/// Checks a repository location's syntax and a ref before anything else sees them.
pub fn validate_request(repository: &str, git_ref: &str) -> Result<Source, CheckoutError> {
    validate_ref(git_ref)?;
    Source::parse(repository)
}

/// A ref must be a branch, tag or commit name: `/`-separated components of `.`-separated
/// non-empty parts (so no `..`, `//`, leading or trailing `/` or `.`), without white space,
/// control characters or any of `: ^ ~ ? * [ \ { }` (so no `@{`), not starting with `-` so it
/// can never be read as an option. `api::index::REF_PATTERN` states the same for the API's
/// document.
fn validate_ref(git_ref: &str) -> Result<(), CheckoutError> {
    let allowed = |c: char| {
        !c.is_whitespace()
            && !c.is_control()
            && !matches!(c, ':' | '^' | '~' | '?' | '*' | '[' | '\\' | '{' | '}')
    };
    let valid = !git_ref.is_empty()
        && git_ref.len() <= 256
        && !git_ref.starts_with('-')
        && git_ref.split('/').all(|component| {
            component
                .split('.')
                .all(|part| !part.is_empty() && part.chars().all(allowed))
        });
    if valid {
        Ok(())
    } else {
        Err(CheckoutError::Invalid(
            "ref must be a branch, tag or commit name (no spaces, '..', '//', ':', '^', '~', '*', '?', '[', '\\', '{', '}'; not starting with '-', '/' or '.')".into(),
        ))
    }
}

/// Whether a repository path lies in a vendored or build folder.
pub fn is_skipped_path(path: &str) -> bool {
    path.split('/')
        .any(|component| SKIPPED_DIRS.contains(&component))
}

/// Indexes a repository row; the checkout folder is gone when this returns (or unwinds).
pub(crate) async fn index_repository(
    indexer: &Indexer,
    versions: &Versions,
    config: &IndexConfig,
    request: &RepositoryPayload,
    version: i64,
) -> Work {
    let source = match validate_request(&request.repository, &request.git_ref) {
        Ok(source) => source,
        Err(error) => return checkout_failed(error),
    };
    let scratch = match make_scratch_dir(config.scratch_dir.as_deref()) {
        Ok(scratch) => scratch,
        Err(error) => {
            return Work::failed(JobFailure::transient(format!(
                "could not create a checkout folder: {error}"
            )))
        }
    };
    let checkout = scratch.path().join("checkout");
    let files =
        match checkout_and_list(&source, &request.git_ref, &checkout, &config.repository).await {
            Ok(files) => files,
            Err(error) => return checkout_failed(error),
        };
    tracing::info!(files = files.len(), "repository checked out");
    let mut results = Vec::with_capacity(files.len());
    for path in &files {
        let file = CheckedOutFile {
            project: &request.project,
            checkout: &checkout,
            path,
            version,
        };
        match index_checked_out_file(indexer, versions, config, file).await {
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

fn checkout_failed(error: CheckoutError) -> Work {
    tracing::warn!(category = error.category(), "checkout failed");
    Work::failed(JobFailure {
        kind: error.kind(),
        message: error.to_string(),
    })
}

struct CheckedOutFile<'a> {
    project: &'a str,
    checkout: &'a Path,
    path: &'a str,
    version: i64,
}

/// Indexes one file of a checkout; `Err` only for a transient failure that retries the row.
async fn index_checked_out_file(
    indexer: &Indexer,
    versions: &Versions,
    config: &IndexConfig,
    file: CheckedOutFile<'_>,
) -> Result<FileResult, JobFailure> {
    let path = file.path;
    let content = match tokio::fs::read(file.checkout.join(path)).await {
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
    let stored = Versioned {
        project: file.project,
        path,
        version: file.version,
    };
    match versions.index_file(indexer, stored, &content).await {
        Ok(result) => Ok(result),
        Err(error) => match error.kind() {
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

/// Fetches `git_ref` of `source` (checked against `policy`, its host resolved and pinned) into
/// a new repository at `target`, checks it out and lists the regular tracked files outside
/// skipped folders. Every git command shares the policy's deadline and size cap.
pub async fn checkout_and_list(
    source: &Source,
    git_ref: &str,
    target: &Path,
    policy: &RepositoryPolicy,
) -> Result<Vec<String>, CheckoutError> {
    validate_ref(git_ref)?;
    policy.check(source)?;
    let (url, resolved) = match source {
        Source::Local(path) => (file_url(path)?, Resolved::default()),
        Source::Remote(remote) => (remote.git_url.clone(), policy.resolve(remote).await?),
    };
    let git = Git::new(source, &resolved, policy);
    let target_arg = target.to_string_lossy().into_owned();
    git.run(None, &["init", "--quiet", "--", &target_arg], None)
        .await
        .map_err(|error| git.classify("init", error))?;
    let commit = fetch(&git, target, &url, git_ref).await?;
    let checkout_bytes = tree_size(&git, target, &commit).await?;
    if checkout_bytes > git.max_bytes() {
        return Err(CheckoutError::TooLarge {
            limit: git.max_bytes(),
        });
    }
    git.run(
        Some(target),
        &["checkout", "--quiet", "--detach", &commit, "--"],
        None,
    )
    .await
    .map_err(|error| git.classify("checkout", error))?;
    let listing = git
        .run(Some(target), &["ls-files", "-z"], None)
        .await
        .map_err(|error| git.classify("ls-files", error))?;
    let listing = String::from_utf8_lossy(&listing);
    let mut files: Vec<String> = listing
        .split('\0')
        .filter(|path| !path.is_empty() && !is_skipped_path(path))
        .filter(|path| is_regular_file(&target.join(path)))
        .map(str::to_owned)
        .collect();
    files.sort();
    tracing::debug!(
        timeout_secs = git.timeout().as_secs(),
        checkout_bytes,
        "checkout done"
    );
    Ok(files)
}

/// Fetches only `git_ref` (one commit deep) and returns its commit id. An abbreviated commit id
/// cannot be fetched by name, so for one the branches and tags are fetched and it is looked up.
async fn fetch(
    git: &Git,
    target: &Path,
    url: &str,
    git_ref: &str,
) -> Result<String, CheckoutError> {
    let objects = target.join(".git");
    let shallow = git
        .run(
            Some(target),
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--depth=1",
                "--",
                url,
                git_ref,
            ],
            Some(&objects),
        )
        .await
        .map_err(|error| git.classify("fetch", error));
    let wanted = match shallow {
        Ok(_) => "FETCH_HEAD^{commit}".to_owned(),
        Err(CheckoutError::UnknownRef) if looks_like_abbreviated_commit(git_ref) => {
            git.run(
                Some(target),
                &[
                    "fetch",
                    "--quiet",
                    "--no-tags",
                    "--",
                    url,
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                Some(&objects),
            )
            .await
            .map_err(|error| git.classify("fetch", error))?;
            format!("{git_ref}^{{commit}}")
        }
        Err(error) => return Err(error),
    };
    let commit = git
        .run(
            Some(target),
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &wanted,
            ],
            None,
        )
        .await
        .map_err(|error| match error {
            RunError::Failed { .. } => CheckoutError::UnknownRef,
            other => git.classify("rev-parse", other),
        })?;
    Ok(String::from_utf8_lossy(&commit).trim().to_owned())
}

fn looks_like_abbreviated_commit(git_ref: &str) -> bool {
    (4..40).contains(&git_ref.len()) && git_ref.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Bytes of the files a checkout of `commit` would write.
async fn tree_size(git: &Git, target: &Path, commit: &str) -> Result<u64, CheckoutError> {
    let listing = git
        .run(
            Some(target),
            &["ls-tree", "-r", "-l", "-z", "--end-of-options", commit],
            None,
        )
        .await
        .map_err(|error| git.classify("ls-tree", error))?;
    // `<mode> <type> <object> <size>\t<path>`; submodules have no size ("-").
    let total = listing
        .split(|&byte| byte == 0)
        .filter_map(|entry| {
            let meta = entry.split(|&byte| byte == b'\t').next()?;
            let size = std::str::from_utf8(meta).ok()?.split_whitespace().nth(3)?;
            size.parse::<u64>().ok()
        })
        .sum();
    Ok(total)
}

fn file_url(path: &Path) -> Result<String, CheckoutError> {
    url::Url::from_file_path(path)
        .map(|url| url.to_string())
        .map_err(|()| CheckoutError::Invalid("a local repository must be an absolute path".into()))
}

/// A regular file, not a symlink (which could point outside the checkout) or a submodule.
fn is_regular_file(path: &PathBuf) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_file())
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
    fn options_and_odd_refs_are_not_accepted() {
        assert!(validate_request("--upload-pack=evil", "main").is_err());
        assert!(validate_request("/tmp/repo", "-b").is_err());
        assert!(validate_request("/tmp/repo", "main branch").is_err());
        assert!(validate_request("/tmp/repo", "main:refs/heads/x").is_err());
        assert!(validate_request("/tmp/repo", "HEAD~1").is_err());
        assert!(validate_request("/tmp/repo", "v1.0").is_ok());
        assert!(validate_request("/tmp/repo", "feature/x-1").is_ok());
        assert!(validate_request("/tmp/repo", "0123abcd").is_ok());
    }

    #[test]
    fn abbreviated_commit_ids_are_told_from_names() {
        assert!(looks_like_abbreviated_commit("600b30cfd1"));
        assert!(!looks_like_abbreviated_commit("develop"));
        assert!(!looks_like_abbreviated_commit(&"a".repeat(40)));
    }
}
