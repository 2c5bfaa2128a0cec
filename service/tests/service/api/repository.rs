//! `POST /index/repository` from local repositories (allowed by configuration): any branch, tag
//! or commit as the ref, .gitignore and vendored folders respected, checkout folder removed
//! afterwards, short error categories; and local sources refused by default.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::support::{accepted_job_id, spawn_app, spawn_app_with, TestApp, TestResult};

pub(crate) fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.com"])
        .args(args)
        .output()?;
    ensure!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn write(dir: &Path, path: &str, content: &str) -> TestResult {
    let path = dir.join(path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, content)?;
    Ok(())
}

/// A repository whose tag `v1` has a JSON loader, a vendored file and an ignored file; `main`
/// then replaces the loader with a prime sieve.
fn make_repository(dir: &Path) -> TestResult {
    git(dir, &["init", "--quiet", "--initial-branch=main"])?;
    write(dir, "src/config.rs", "/// Reads a JSON configuration file from disk.\npub fn load_config(path: &str) -> String {\n    std::fs::read_to_string(path).unwrap_or_default()\n}\n")?;
    write(
        dir,
        "vendor/dep/lib.rs",
        "/// Vendored JSON parser.\npub fn parse_json() {}\n",
    )?;
    write(dir, "node_modules/x/index.js", "function parseJson() {}\n")?;
    write(dir, ".gitignore", "secret.rs\n")?;
    write(
        dir,
        "secret.rs",
        "/// Ignored: must never be indexed.\npub fn read_json_secret() {}\n",
    )?;
    git(dir, &["add", "."])?;
    git(dir, &["commit", "--quiet", "-m", "v1"])?;
    git(dir, &["tag", "v1"])?;
    write(
        dir,
        "src/config.rs",
        "/// Computes primes with a sieve.\npub fn primes() -> Vec<u32> { vec![2, 3, 5] }\n",
    )?;
    git(dir, &["commit", "--quiet", "-am", "v2"])?;
    Ok(())
}

/// A test app that accepts local repositories.
async fn spawn_local_app() -> anyhow::Result<TestApp> {
    spawn_app_with(|settings| settings.repository.allow_local = true).await
}

fn no_checkout_left(app: &TestApp) -> TestResult {
    let leftovers: Vec<_> = std::fs::read_dir(app.scratch.path())?.collect();
    ensure!(leftovers.is_empty(), "checkout folders left: {leftovers:?}");
    Ok(())
}

#[tokio::test]
async fn a_local_repository_is_indexed_at_a_ref_and_its_checkout_removed() -> TestResult {
    // Arrange
    let app = spawn_local_app().await?;
    let repo = tempfile::tempdir()?;
    make_repository(repo.path())?;

    // Act
    let response = app
        .post_repository(&repo.path().to_string_lossy(), "v1")
        .await?;
    let job_id = accepted_job_id(response).await?;
    let job = app.wait_for_job(job_id).await?;

    // Assert: tracked files outside vendored folders (src/config.rs and .gitignore), at v1.
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["files"]["total"], 2, "{job}");
    let results = app.search("read a json configuration file").await?;
    let hits = results["hits"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        hits.first().map(|h| h["path"].clone()),
        Some(json!("src/config.rs"))
    );
    assert!(hits[0]["content"]
        .as_str()
        .unwrap_or("")
        .contains("load_config"));
    for hit in &hits {
        let path = hit["path"].as_str().unwrap_or("");
        assert!(
            !path.starts_with("vendor/")
                && !path.starts_with("node_modules/")
                && path != "secret.rs",
            "{path}"
        );
    }
    no_checkout_left(&app)
}

/// A bare repository: `main` has a.rs and b.rs; the annotated tag `v1` marks the first commit
/// (a.rs only); `develop` branches from it and adds c.rs and d.rs. Returns (main's second
/// commit, develop's commit).
fn make_branchy_repository(work: &Path, bare: &Path) -> anyhow::Result<(String, String)> {
    std::fs::create_dir_all(work)?;
    git(work, &["init", "--quiet", "--initial-branch=main"])?;
    write(work, "src/a.rs", "pub fn alpha() -> u32 { 1 }\n")?;
    git(work, &["add", "."])?;
    git(work, &["commit", "--quiet", "-m", "first"])?;
    git(work, &["tag", "-a", "v1", "-m", "release 1"])?;
    git(work, &["checkout", "--quiet", "-b", "develop"])?;
    write(work, "src/c.rs", "pub fn gamma() -> u32 { 3 }\n")?;
    write(work, "src/d.rs", "pub fn delta() -> u32 { 4 }\n")?;
    git(work, &["add", "."])?;
    git(work, &["commit", "--quiet", "-m", "develop"])?;
    let develop = git(work, &["rev-parse", "HEAD"])?;
    git(work, &["checkout", "--quiet", "main"])?;
    write(work, "src/b.rs", "pub fn beta() -> u32 { 2 }\n")?;
    git(work, &["add", "."])?;
    git(work, &["commit", "--quiet", "-m", "second"])?;
    let main = git(work, &["rev-parse", "HEAD"])?;
    let output = Command::new("git")
        .args(["clone", "--quiet", "--bare"])
        .arg(work)
        .arg(bare)
        .output()?;
    ensure!(output.status.success(), "git clone --bare failed");
    Ok((main, develop))
}

#[tokio::test]
async fn any_branch_tag_or_commit_works_as_the_ref() -> TestResult {
    // Arrange
    let app = spawn_local_app().await?;
    let dir = tempfile::tempdir()?;
    let bare = dir.path().join("bare.git");
    let (main, develop) = make_branchy_repository(&dir.path().join("work"), &bare)?;
    let url = format!("file://{}", bare.to_string_lossy());

    // Act and assert: each ref checks out its own files.
    for (git_ref, files) in [
        ("develop", 3),
        ("v1", 1),
        ("main", 2),
        (main.as_str(), 2),
        (&develop[..10], 3),
        ("refs/heads/develop", 3),
    ] {
        let job_id = accepted_job_id(app.post_repository(&url, git_ref).await?).await?;
        let job = app.wait_for_job(job_id).await?;
        assert_eq!(job["status"], "completed", "{git_ref}: {job}");
        assert_eq!(job["files"]["total"], files, "{git_ref}: {job}");
    }
    no_checkout_left(&app)
}

#[tokio::test]
async fn an_unknown_ref_fails_the_job_with_a_short_category_and_removes_the_checkout() -> TestResult
{
    let app = spawn_local_app().await?;
    let repo = tempfile::tempdir()?;
    make_repository(repo.path())?;

    let response = app
        .post_repository(&repo.path().to_string_lossy(), "no-such-tag")
        .await?;
    let job: Value = app.wait_for_job(accepted_job_id(response).await?).await?;

    assert_eq!(job["status"], "failed", "{job}");
    let error = job["issues"][0]["error"].as_str().context("an error")?;
    assert!(error.starts_with("unknown_ref:"), "{job}");
    assert!(!error.contains("fatal"), "git's own text leaked: {error}");
    no_checkout_left(&app)
}

#[tokio::test]
async fn a_repository_that_is_neither_a_url_nor_a_directory_is_refused() -> TestResult {
    let app = spawn_local_app().await?;

    for repository in [
        "relative/path",
        "/no/such/dir",
        "--upload-pack=touch /tmp/x",
        "ext::sh -c touch% /tmp/x",
    ] {
        let response = app.post_repository(repository, "main").await?;
        assert_eq!(response.status(), 400, "{repository}");
    }
    Ok(())
}

#[tokio::test]
async fn local_paths_file_urls_and_unlisted_hosts_are_refused_by_default() -> TestResult {
    // Arrange: default settings; an existing repository on this machine.
    let app = spawn_app().await?;
    let repo = tempfile::tempdir()?;
    make_repository(repo.path())?;
    let path = repo.path().to_string_lossy().into_owned();

    // Act and assert
    for repository in [
        path.clone(),
        format!("file://{path}"),
        "https://git.example.com/a/b.git".to_owned(),
        "http://github.com/a/b.git".to_owned(),
        "git@github.com:a/b.git".to_owned(),
    ] {
        let response = app.post_repository(&repository, "main").await?;
        let status = response.status();
        let body: Value = response.json().await?;
        assert_eq!(status, 400, "{repository}: {body}");
        assert!(
            body["error"].as_str().unwrap_or("").starts_with("refused:"),
            "{repository}: {body}"
        );
    }
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM index_jobs WHERE queue_id = $1")
        .bind(app.queue.id().as_str())
        .fetch_one(&app.pool)
        .await?;
    assert_eq!(jobs, 0, "a refused request wrote a job");
    Ok(())
}

#[tokio::test]
async fn a_repository_over_the_size_cap_fails_as_too_large() -> TestResult {
    // Arrange: a 64 KiB file of incompressible bytes, and a 16 KiB cap.
    let app = spawn_app_with(|settings| {
        settings.repository.allow_local = true;
        settings.repository.max_bytes = 16 * 1024;
    })
    .await?;
    let repo = tempfile::tempdir()?;
    git(repo.path(), &["init", "--quiet", "--initial-branch=main"])?;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: String = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'!' + (state % 90) as u8)
        })
        .collect();
    write(repo.path(), "data.txt", &noise)?;
    git(repo.path(), &["add", "."])?;
    git(repo.path(), &["commit", "--quiet", "-m", "big"])?;

    // Act
    let response = app
        .post_repository(&repo.path().to_string_lossy(), "main")
        .await?;
    let job = app.wait_for_job(accepted_job_id(response).await?).await?;

    // Assert
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["issues"][0]["error"].as_str().unwrap_or("");
    assert!(error.starts_with("too_large:"), "{job}");
    no_checkout_left(&app)
}
