//! Where a repository may come from: parsing a `repository` location into a [`Source`], the
//! [`RepositoryPolicy`] that allows it or not (local paths, schemes, hosts, private networks),
//! and the DNS check whose addresses git is then made to use.
//!
//! The API checks a location when the request arrives (a refused one is a `400`), and the worker
//! checks it again right before git runs, resolving the host itself: what git connects to is
//! what was checked (see [`Resolved`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use super::checkout::CheckoutError;

/// Default of `REPOSITORY_ALLOWED_SCHEMES`.
pub const DEFAULT_ALLOWED_SCHEMES: &str = "https";
/// Default of `REPOSITORY_ALLOWED_HOSTS`.
pub const DEFAULT_ALLOWED_HOSTS: &str = "github.com,gitlab.com,bitbucket.org,codeberg.org";
/// Default of `REPOSITORY_GIT_TIMEOUT_SECS`: the wall-clock limit of one checkout.
pub const DEFAULT_GIT_TIMEOUT_SECS: u64 = 300;
/// Default of `REPOSITORY_LOW_SPEED_BYTES_PER_SEC`.
pub const DEFAULT_LOW_SPEED_BYTES_PER_SEC: u32 = 1024;
/// Default of `REPOSITORY_LOW_SPEED_SECS`.
pub const DEFAULT_LOW_SPEED_SECS: u64 = 30;
/// Default of `REPOSITORY_MAX_BYTES`: fetched objects, and files checked out, each at most this.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// How long the worker waits for DNS before failing the attempt.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A network transport git may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `https://`.
    Https,
    /// `http://` (plain text).
    Http,
    /// `ssh://` and scp-like `user@host:path`.
    Ssh,
}

impl Scheme {
    /// The name used in settings and in git's `protocol.<name>.allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
            Scheme::Ssh => "ssh",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Https => 443,
            Scheme::Http => 80,
            Scheme::Ssh => 22,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "https" => Ok(Scheme::Https),
            "http" => Ok(Scheme::Http),
            "ssh" => Ok(Scheme::Ssh),
            other => Err(format!(
                "unknown repository scheme {other:?}: use https, http or ssh (local paths: REPOSITORY_ALLOW_LOCAL)"
            )),
        }
    }
}

/// What `POST /index/repository` accepts, and how git may fetch it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryPolicy {
    /// Absolute local paths and `file://` URLs.
    pub allow_local: bool,
    /// Network schemes allowed.
    pub schemes: Vec<Scheme>,
    /// Host patterns allowed: `example.com` (that host), `*.example.com` (it and its
    /// subdomains), an IP address, or `*` (any host).
    pub hosts: Vec<String>,
    /// Whether hosts may be (or resolve to) loopback, private, link-local or other non-public
    /// addresses.
    pub allow_private_networks: bool,
    /// Wall-clock limit of one checkout (fetch, checkout, listing); git is killed at it.
    pub git_timeout: Duration,
    /// An http(s) transfer slower than this many bytes per second...
    pub low_speed_bytes_per_sec: u32,
    /// ...for this long is aborted (ssh: the server must answer keep-alives in this time).
    pub low_speed_time: Duration,
    /// Most bytes fetched, and most bytes of files checked out.
    pub max_bytes: u64,
}

impl Default for RepositoryPolicy {
    fn default() -> Self {
        Self {
            allow_local: false,
            schemes: parse_list(DEFAULT_ALLOWED_SCHEMES)
                .filter_map(|s| s.parse().ok())
                .collect(),
            hosts: parse_list(DEFAULT_ALLOWED_HOSTS)
                .map(str::to_owned)
                .collect(),
            allow_private_networks: false,
            git_timeout: Duration::from_secs(DEFAULT_GIT_TIMEOUT_SECS),
            low_speed_bytes_per_sec: DEFAULT_LOW_SPEED_BYTES_PER_SEC,
            low_speed_time: Duration::from_secs(DEFAULT_LOW_SPEED_SECS),
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The items of a comma-separated list, trimmed, empty ones left out.
pub fn parse_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// A host as written in a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A DNS name, lower case.
    Domain(String),
    /// An IP address literal.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A repository on another machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// How git reaches it.
    pub scheme: Scheme,
    /// Its host.
    pub host: Host,
    /// Its port (the scheme's default when the location has none).
    pub port: u16,
    /// The location git is given: credentials removed (a user name kept for ssh).
    pub git_url: String,
}

/// A parsed repository location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An absolute path on this machine (given as a path or a `file://` URL).
    Local(PathBuf),
    /// A repository reached over the network.
    Remote(Remote),
}

impl Source {
    /// Parses a location: an absolute path, a `file://`, `http(s)://` or `ssh://` URL, or an
    /// scp-like `user@host:path`. Only the syntax is checked here; [`RepositoryPolicy::check`]
    /// says whether it is allowed.
    pub fn parse(location: &str) -> Result<Self, CheckoutError> {
        let invalid = |why: &str| CheckoutError::Invalid(why.to_owned());
        if location.is_empty() || location.len() > 4096 {
            return Err(invalid("repository must be 1 to 4096 bytes"));
        }
        if location.starts_with('-') || location.chars().any(char::is_control) {
            return Err(invalid(
                "repository must not start with '-' or contain control characters",
            ));
        }
        if location.starts_with('/') {
            return Ok(Source::Local(PathBuf::from(location)));
        }
        if is_transport_syntax(location) {
            // git's `transport::address` syntax (e.g. `ext::`, which runs a command).
            return Err(invalid("git transport syntax (`::`) is not accepted"));
        }
        if location.contains(char::is_whitespace) {
            return Err(invalid("a repository URL must not contain spaces"));
        }
        if location.contains("://") {
            return parse_url(location);
        }
        // git reads `[user@]host:path` as ssh when no '/' comes before the ':'.
        let before_path = location.split('/').next().unwrap_or(location);
        let (user, rest) = match before_path.rfind('@') {
            Some(at) => (Some(&location[..at]), &location[at + 1..]),
            None => (None, location),
        };
        match rest.split_once(':') {
            Some((host, path)) if !host.contains('/') => parse_scp_like(user, host, path),
            _ => Err(invalid(
                "repository must be an absolute local path or a git URL (https://, ssh://, user@host:path)",
            )),
        }
    }
}

/// `<transport>::<address>`, as in `ext::sh -c ...` (an IPv6 `[::1]` is not).
fn is_transport_syntax(location: &str) -> bool {
    location.split_once("::").is_some_and(|(transport, _)| {
        !transport.is_empty()
            && transport
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
}

fn parse_url(location: &str) -> Result<Source, CheckoutError> {
    let invalid = |why: String| CheckoutError::Invalid(why);
    let mut url =
        url::Url::parse(location).map_err(|error| invalid(format!("not a valid URL ({error})")))?;
    let scheme = match url.scheme() {
        "file" => {
            if url.host_str().is_some_and(|host| host != "localhost") {
                return Err(invalid("a file:// URL must name a local path".into()));
            }
            let path = url
                .to_file_path()
                .map_err(|()| invalid("a file:// URL must name an absolute path".into()))?;
            return Ok(Source::Local(path));
        }
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        "ssh" | "git+ssh" | "ssh+git" => Scheme::Ssh,
        other => {
            return Err(CheckoutError::Refused(format!(
                "the {other}:// scheme is not supported; use https, http or ssh"
            )))
        }
    };
    let host = match url.host() {
        Some(url::Host::Domain(name)) => parse_host(name)?,
        Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
        None => return Err(invalid("the URL has no host".into())),
    };
    let port = url.port().unwrap_or(scheme.default_port());
    // Credentials are never passed on: an http(s) user name is often a token, and ssh runs in
    // batch mode (keys only), so only an ssh user name is kept.
    let user = url.username().to_owned();
    let _ = url.set_password(None);
    if scheme == Scheme::Ssh {
        validate_user(&user)?;
    } else {
        let _ = url.set_username("");
    }
    url.set_fragment(None);
    if url.path().starts_with("/-") {
        return Err(invalid(
            "the repository path must not start with '-'".into(),
        ));
    }
    Ok(Source::Remote(Remote {
        scheme,
        host,
        port,
        git_url: url.to_string(),
    }))
}

fn parse_scp_like(userinfo: Option<&str>, host: &str, path: &str) -> Result<Source, CheckoutError> {
    // A password is dropped: ssh runs in batch mode.
    let user = userinfo.map_or("", |userinfo| userinfo.split(':').next().unwrap_or(""));
    validate_user(user)?;
    if path.is_empty() || path.starts_with('-') {
        return Err(CheckoutError::Invalid(
            "the repository path must not be empty or start with '-'".into(),
        ));
    }
    let host_name = host.trim_start_matches('[').trim_end_matches(']');
    let host = parse_host(host_name)?;
    let host_part = match &host {
        Host::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        other => other.to_string(),
    };
    let git_url = if user.is_empty() {
        format!("{host_part}:{path}")
    } else {
        format!("{user}@{host_part}:{path}")
    };
    Ok(Source::Remote(Remote {
        scheme: Scheme::Ssh,
        host,
        port: Scheme::Ssh.default_port(),
        git_url,
    }))
}

/// A host name or IP literal; names are limited to letters, digits, '.' and '-', so they are
/// safe in git's and ssh's command lines.
fn parse_host(name: &str) -> Result<Host, CheckoutError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(Host::Ip(ip));
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        Ok(Host::Domain(name))
    } else {
        Err(CheckoutError::Invalid(format!(
            "{name:?} is not a valid host name"
        )))
    }
}

fn validate_user(user: &str) -> Result<(), CheckoutError> {
    let valid = !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(CheckoutError::Invalid(
            "an ssh user name may only use letters, digits, '.', '_' and '-'".into(),
        ))
    }
}

/// The addresses a remote's host resolved to, all checked: git is made to connect to these
/// and nothing else, so a DNS answer that changes between the check and git's own lookup (DNS
/// rebinding) cannot send it elsewhere.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The checked addresses; empty for an IP literal (nothing to resolve).
    pub addresses: Vec<IpAddr>,
}

impl RepositoryPolicy {
    /// Whether the location may be indexed at all (no DNS yet): local sources only when
    /// allowed, remote ones with an allowed scheme and host, and an IP literal only if public
    /// (or private networks are allowed).
    pub fn check(&self, source: &Source) -> Result<(), CheckoutError> {
        match source {
            Source::Local(_) if self.allow_local => Ok(()),
            Source::Local(_) => Err(CheckoutError::Refused(
                "local paths and file:// URLs are not allowed (REPOSITORY_ALLOW_LOCAL)".into(),
            )),
            Source::Remote(remote) => {
                if !self.schemes.contains(&remote.scheme) {
                    return Err(CheckoutError::Refused(format!(
                        "the {} scheme is not allowed (REPOSITORY_ALLOWED_SCHEMES)",
                        remote.scheme
                    )));
                }
                if !self.host_allowed(&remote.host) {
                    return Err(CheckoutError::Refused(format!(
                        "host {} is not allowed (REPOSITORY_ALLOWED_HOSTS)",
                        remote.host
                    )));
                }
                match remote.host {
                    Host::Ip(ip) => self.check_address(&remote.host, ip),
                    Host::Domain(_) => Ok(()),
                }
            }
        }
    }

    /// [`RepositoryPolicy::check`], then resolves a remote's host and checks every address.
    pub async fn resolve(&self, remote: &Remote) -> Result<Resolved, CheckoutError> {
        self.check(&Source::Remote(remote.clone()))?;
        let name = match &remote.host {
            Host::Ip(_) => return Ok(Resolved::default()),
            Host::Domain(name) => name.clone(),
        };
        let unresolvable = || CheckoutError::Unresolvable { host: name.clone() };
        let lookup = tokio::net::lookup_host((name.as_str(), remote.port));
        let addresses: Vec<IpAddr> = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
            Ok(Ok(found)) => found.map(|address| address.ip()).collect(),
            Ok(Err(_)) | Err(_) => return Err(unresolvable()),
        };
        if addresses.is_empty() {
            return Err(unresolvable());
        }
        for &ip in &addresses {
            self.check_address(&remote.host, ip)?;
        }
        let mut addresses = addresses;
        addresses.sort();
        addresses.dedup();
        Ok(Resolved { addresses })
    }

    fn host_allowed(&self, host: &Host) -> bool {
        let host = host.to_string();
        self.hosts.iter().any(|pattern| {
            let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
            match pattern.strip_prefix("*.") {
                _ if pattern == "*" => true,
                Some(domain) => host == domain || host.ends_with(&format!(".{domain}")),
                None => host == pattern.trim_start_matches('[').trim_end_matches(']'),
            }
        })
    }

    fn check_address(&self, host: &Host, ip: IpAddr) -> Result<(), CheckoutError> {
        if self.allow_private_networks || is_public(ip) {
            Ok(())
        } else {
            Err(CheckoutError::BlockedAddress {
                host: host.to_string(),
            })
        }
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local, shared
/// (CGNAT), unspecified, broadcast, multicast, documentation, benchmarking or reserved; IPv6
/// forms embedding an IPv4 address are judged by that address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let first = ip.segments()[0];
    let reserved = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8); // documentation
    !reserved
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

#[cfg(test)]
mod tests;
