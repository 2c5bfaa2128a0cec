//! `POST /index/repository`: a local git repository at a ref, .gitignore and vendored folders
//! respected, checkout folder removed afterwards.

use std::path::Path;
use std::process::Command;

use anyhow::ensure;
use serde_json::{json, Value};

use crate::support::{accepted_job_id, spawn_app, TestResult};

fn git(dir: &Path, args: &[&str]) -> TestResult {
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
    Ok(())
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

#[tokio::test]
async fn a_local_repository_is_indexed_at_a_ref_and_its_checkout_removed() -> TestResult {
    // Arrange
    let app = spawn_app().await?;
    let repo = tempfile::tempdir()?;
    make_repository(repo.path())?;

    // Act
    let response = app
        .client
        .post(format!("{}/index/repository", app.address))
        .json(&json!({
            "project": app.project,
            "repository": repo.path().to_string_lossy(),
            "ref": "v1",
        }))
        .send()
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
    let leftovers: Vec<_> = std::fs::read_dir(app.scratch.path())?.collect();
    assert!(leftovers.is_empty(), "checkout folders left: {leftovers:?}");
    Ok(())
}

#[tokio::test]
async fn an_unknown_ref_fails_the_job_with_gits_error_and_removes_the_checkout() -> TestResult {
    let app = spawn_app().await?;
    let repo = tempfile::tempdir()?;
    make_repository(repo.path())?;

    let response = app
        .client
        .post(format!("{}/index/repository", app.address))
        .json(&json!({ "project": app.project, "repository": repo.path().to_string_lossy(), "ref": "no-such-tag" }))
        .send()
        .await?;
    let job: Value = app.wait_for_job(accepted_job_id(response).await?).await?;

    assert_eq!(job["status"], "failed", "{job}");
    let error = job["issues"][0]["error"].as_str().unwrap_or("");
    assert!(error.contains("git checkout failed"), "{job}");
    let leftovers: Vec<_> = std::fs::read_dir(app.scratch.path())?.collect();
    assert!(leftovers.is_empty(), "checkout folders left: {leftovers:?}");
    Ok(())
}

#[tokio::test]
async fn a_repository_that_is_neither_a_url_nor_a_directory_is_refused() -> TestResult {
    let app = spawn_app().await?;

    for repository in [
        "relative/path",
        "/no/such/dir",
        "--upload-pack=touch /tmp/x",
    ] {
        let response = app
            .client
            .post(format!("{}/index/repository", app.address))
            .json(&json!({ "project": app.project, "repository": repository, "ref": "main" }))
            .send()
            .await?;
        assert_eq!(response.status(), 400, "{repository}");
    }
    Ok(())
}
