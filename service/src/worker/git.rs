//! Running `git` for a checkout, bounded: every command of one checkout shares a wall-clock
//! deadline, at which git and every process it started (remote helpers, ssh) are killed; a fetch
//! is stopped when the objects it wrote pass the size cap; http(s) transfers abort under the
//! low-speed limit, ssh runs in batch mode with keep-alives. git runs in a process group of its
//! own, killed as a whole when the run is abandoned for any reason (timeout, size, the worker's
//! task being aborted at shutdown), so nothing outlives the attempt.
//!
//! git's error text stays here: it is classified into a [`CheckoutError`] category, and only
//! logged (redacted), never returned to clients.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::time::Instant;

use super::checkout::CheckoutError;
use super::source::{Host, RepositoryPolicy, Resolved, Scheme, Source};
use crate::redact::redact_url;

/// Most stdout kept from one git command (file listings of very large trees).
const MAX_STDOUT_BYTES: u64 = 256 * 1024 * 1024;
/// Most stderr kept (for classification and the log).
const MAX_STDERR_BYTES: u64 = 64 * 1024;
/// How often a fetch's size is looked at.
const SIZE_POLL: Duration = Duration::from_millis(200);

/// How one git command ended badly, before classification.
#[derive(Debug)]
pub(crate) enum RunError {
    /// Over the deadline (git was killed).
    Timeout,
    /// Over the size cap (git was killed).
    TooLarge,
    /// Could not start git.
    Spawn(std::io::Error),
    /// git exited with an error.
    Failed {
        /// What git printed, at most [`MAX_STDERR_BYTES`].
        stderr: String,
    },
}

/// The git of one checkout: its configuration, environment and deadline.
pub(crate) struct Git {
    config: Vec<String>,
    env: Vec<(&'static str, String)>,
    deadline: Instant,
    timeout: Duration,
    max_bytes: u64,
}

impl Git {
    /// git for fetching `source`, whose host (if any) resolved to `resolved`; the deadline
    /// starts now.
    pub(crate) fn new(source: &Source, resolved: &Resolved, policy: &RepositoryPolicy) -> Self {
        let protocol = match source {
            Source::Local(_) => "file",
            Source::Remote(remote) => remote.scheme.as_str(),
        };
        let mut config = vec![
            // Only the transport of this source, for the fetch and anything it could lead to.
            "protocol.allow=never".to_owned(),
            format!("protocol.{protocol}.allow=always"),
            // A redirect would reach a host that was never checked.
            "http.followRedirects=false".to_owned(),
            format!(
                "http.lowSpeedLimit={}",
                policy.low_speed_bytes_per_sec.max(1)
            ),
            format!(
                "http.lowSpeedTime={}",
                policy.low_speed_time.as_secs().max(1)
            ),
            "advice.detachedHead=false".to_owned(),
            "core.hooksPath=/dev/null".to_owned(),
        ];
        let mut env = vec![
            ("GIT_TERMINAL_PROMPT", "0".to_owned()),
            ("GIT_ALLOW_PROTOCOL", protocol.to_owned()),
            ("GCM_INTERACTIVE", "never".to_owned()),
            // English messages, which classification relies on.
            ("LC_ALL", "C".to_owned()),
        ];
        if let Source::Remote(remote) = source {
            match (&remote.host, remote.scheme) {
                (Host::Domain(name), Scheme::Https | Scheme::Http)
                    if !resolved.addresses.is_empty() =>
                {
                    // libcurl connects to these addresses (still sending the name for the Host
                    // header and TLS verification) instead of resolving the name again.
                    config.push(format!(
                        "http.curloptResolve={name}:{}:{}",
                        remote.port,
                        curl_addresses(resolved)
                    ));
                }
                (host, Scheme::Ssh) => {
                    env.push(("GIT_SSH_VARIANT", "ssh".to_owned()));
                    env.push(("GIT_SSH_COMMAND", ssh_command(host, resolved, policy)));
                }
                _ => {}
            }
        }
        Self {
            config,
            env,
            deadline: Instant::now() + policy.git_timeout,
            timeout: policy.git_timeout,
            max_bytes: policy.max_bytes,
        }
    }

    /// The wall-clock limit of the checkout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The size cap.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Runs `git -C dir <args>` (no `-C` without a dir) until it exits, the deadline passes, or
    /// (with `watch`) that folder grows over the size cap; returns its stdout.
    pub(crate) async fn run(
        &self,
        dir: Option<&Path>,
        args: &[&str],
        watch: Option<&Path>,
    ) -> Result<Vec<u8>, RunError> {
        let mut command = Command::new("git");
        if let Some(dir) = dir {
            command.arg("-C").arg(dir);
        }
        for setting in &self.config {
            command.arg("-c").arg(setting);
        }
        command
            .args(args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so its helpers can be killed with it.
            .process_group(0);
        let mut child = command.spawn().map_err(RunError::Spawn)?;
        let mut group = KillGroup(child.id().and_then(|id| i32::try_from(id).ok()));
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let finished = async {
            let (status, out, err) = tokio::join!(
                child.wait(),
                read_capped(stdout, MAX_STDOUT_BYTES),
                read_capped(stderr, MAX_STDERR_BYTES),
            );
            (status, out, err)
        };
        let outcome = tokio::select! {
            (status, out, err) = finished => Ok((status, out, err)),
            () = tokio::time::sleep_until(self.deadline) => Err(RunError::Timeout),
            () = grows_over(watch, self.max_bytes) => Err(RunError::TooLarge),
        };
        let (status, out, err) = outcome?;
        // Exited and reaped: its group id may be reused from now on.
        group.disarm();
        let status = status.map_err(RunError::Spawn)?;
        let stderr = String::from_utf8_lossy(&err).into_owned();
        if !status.success() {
            return Err(RunError::Failed { stderr });
        }
        if out.len() as u64 > MAX_STDOUT_BYTES {
            return Err(RunError::TooLarge);
        }
        Ok(out)
    }

    /// Turns a failed run of `command` into its category, logging git's text (redacted).
    pub(crate) fn classify(&self, command: &'static str, error: RunError) -> CheckoutError {
        match error {
            RunError::Timeout => CheckoutError::Timeout {
                limit: self.timeout,
            },
            RunError::TooLarge => CheckoutError::TooLarge {
                limit: self.max_bytes,
            },
            RunError::Spawn(error) => CheckoutError::Spawn(error),
            RunError::Failed { stderr } => {
                let category = classify_stderr(command, &stderr);
                let text: String = stderr.trim().chars().take(1000).collect();
                tracing::warn!(
                    command,
                    category = category.category(),
                    stderr = %redact_words(&text),
                    "git failed"
                );
                category
            }
        }
    }
}

/// Kills a process group when dropped, unless disarmed once its leader was reaped.
struct KillGroup(Option<i32>);

impl KillGroup {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(group) = self.0.filter(|&group| group > 0) {
            // SAFETY: killpg only sends a signal; the group is git's own (process_group(0)),
            // whose leader has not been reaped yet, so the id cannot name anyone else's group.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}

async fn read_capped(stream: Option<impl AsyncRead + Unpin>, limit: u64) -> Vec<u8> {
    let mut buffer = Vec::new();
    if let Some(stream) = stream {
        // One byte over the limit tells a full buffer from an overflowing one.
        let _ = stream.take(limit + 1).read_to_end(&mut buffer).await;
    }
    buffer
}

/// Resolves once the folder holds more than `limit` bytes; never without a folder.
async fn grows_over(folder: Option<&Path>, limit: u64) {
    let Some(folder) = folder.map(Path::to_path_buf) else {
        return std::future::pending().await;
    };
    loop {
        tokio::time::sleep(SIZE_POLL).await;
        let measured = folder.clone();
        let size = tokio::task::spawn_blocking(move || folder_size(&measured))
            .await
            .unwrap_or(0);
        if size > limit {
            return;
        }
    }
}

/// Bytes of the regular files under `folder` (unreadable entries count as empty).
pub(crate) fn folder_size(folder: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![folder.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => stack.push(entry.path()),
                Ok(kind) if kind.is_file() => {
                    total += entry.metadata().map_or(0, |meta| meta.len());
                }
                _ => {}
            }
        }
    }
    total
}

/// `a,b` for libcurl's RESOLVE list, IPv6 in brackets.
fn curl_addresses(resolved: &Resolved) -> String {
    resolved
        .addresses
        .iter()
        .map(|ip| match ip {
            std::net::IpAddr::V4(ip) => ip.to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// ssh in batch mode (keys only, no prompts, unknown host keys refused), with keep-alives as
/// the low-speed limit, connecting to the checked address while verifying the host key under
/// the host's name. Host names are letters, digits, '.' and '-' only (see `source`), so the
/// command line needs no quoting.
fn ssh_command(host: &Host, resolved: &Resolved, policy: &RepositoryPolicy) -> String {
    let keepalive = (policy.low_speed_time.as_secs() / 2).max(1);
    let mut command = format!(
        "ssh -o BatchMode=yes -o ConnectTimeout={} -o ServerAliveInterval={keepalive} -o ServerAliveCountMax=2",
        policy.low_speed_time.as_secs().max(1)
    );
    if let (Host::Domain(name), Some(ip)) = (host, resolved.addresses.first()) {
        command.push_str(&format!(" -o HostName={ip} -o HostKeyAlias={name}"));
    }
    command
}

/// The category of a git failure from its (English) error text.
fn classify_stderr(command: &'static str, stderr: &str) -> CheckoutError {
    let text = stderr.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if has(&[
        "couldn't find remote ref",
        "invalid reference",
        "not a valid object name",
        "unknown revision",
        "needed a single revision",
        "not our ref",
    ]) {
        CheckoutError::UnknownRef
    } else if has(&["operation too slow"]) {
        CheckoutError::TooSlow
    } else if has(&[
        "could not resolve host",
        "could not resolve hostname",
        "name or service not known",
        "temporary failure in name resolution",
    ]) {
        CheckoutError::Unreachable
    } else if has(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied",
        "host key verification failed",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
    ]) {
        CheckoutError::AuthFailed
    } else if has(&[
        "failed to connect",
        "couldn't connect",
        "connection refused",
        "connection timed out",
        "timed out",
        "no route to host",
        "network is unreachable",
        "empty reply from server",
        "connection reset",
        "connection closed",
        "recv failure",
        "ssl_connect",
        "gnutls",
        "remote end hung up",
    ]) {
        CheckoutError::Unreachable
    } else if has(&[
        "not found",
        "does not appear to be a git repository",
        "does not exist",
        "error: 404",
    ]) {
        CheckoutError::NotFound
    } else {
        CheckoutError::Git { command }
    }
}

/// Redacts anything URL-like in a line of git's text.
fn redact_words(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let bare = word.trim_matches(|c| matches!(c, '\'' | '"' | ',' | ':'));
            if bare.contains("://") || bare.contains('@') {
                word.replace(bare, &redact_url(bare))
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn git_connects_to_the_checked_address_and_not_where_dns_points() {
        // Arrange: a name that resolves nowhere, pinned to a local server that answers 404.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let reached = Arc::new(AtomicBool::new(false));
        let server = tokio::spawn({
            let reached = reached.clone();
            async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    reached.store(true, Ordering::SeqCst);
                    let mut head = [0u8; 4096];
                    let _ = socket.read(&mut head).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            }
        });
        let source = Source::parse(&format!("http://pinned.invalid:{port}/x.git")).expect("parses");
        let Source::Remote(remote) = &source else {
            panic!("{source:?} is not remote");
        };
        let resolved = Resolved {
            addresses: vec!["127.0.0.1".parse().expect("ip")],
        };
        let git = Git::new(&source, &resolved, &RepositoryPolicy::default());

        // Act
        let ran = git
            .run(None, &["ls-remote", "--", &remote.git_url], None)
            .await;
        server.abort();

        // Assert: git reached the pinned server (which said 404).
        assert!(
            reached.load(Ordering::SeqCst),
            "git did not use the checked address"
        );
        match ran {
            Err(RunError::Failed { stderr }) => {
                assert_eq!(
                    classify_stderr("ls-remote", &stderr).category(),
                    "not_found",
                    "{stderr}"
                );
            }
            other => panic!("expected a 404 failure, got {other:?}"),
        }
    }

    #[test]
    fn git_errors_fall_into_short_categories() {
        let category = |stderr: &str| classify_stderr("fetch", stderr).category();
        assert_eq!(
            category("fatal: couldn't find remote ref develop2"),
            "unknown_ref"
        );
        assert_eq!(category("fatal: unable to access 'http://127.0.0.1:6379/x.git/': Failed to connect to 127.0.0.1 port 6379 after 0 ms: Couldn't connect to server"), "unreachable");
        assert_eq!(
            category("fatal: unable to access 'x': Operation too slow. Less than 1000 bytes/sec transferred the last 2 seconds"),
            "too_slow"
        );
        assert_eq!(
            category("fatal: repository 'https://github.com/a/b/' not found"),
            "not_found"
        );
        assert_eq!(
            category("fatal: could not read Username for 'https://github.com': terminal prompts disabled"),
            "auth_failed"
        );
        assert_eq!(category("fatal: something new"), "git_failed");
    }

    #[test]
    fn urls_in_git_text_are_redacted_for_the_log() {
        assert_eq!(
            redact_words("fatal: unable to access 'https://tok@h/x.git/': boom"),
            "fatal: unable to access 'https://***@h/x.git/': boom"
        );
    }

    #[test]
    fn ssh_connects_to_the_checked_address_in_batch_mode() {
        let policy = RepositoryPolicy::default();
        let resolved = Resolved {
            addresses: vec!["140.82.121.4".parse().expect("ip")],
        };
        let command = ssh_command(&Host::Domain("github.com".into()), &resolved, &policy);
        assert!(command.contains("BatchMode=yes"), "{command}");
        assert!(
            command.contains("HostName=140.82.121.4 -o HostKeyAlias=github.com"),
            "{command}"
        );
    }
}
