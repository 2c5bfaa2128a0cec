//! Redaction of secrets in URLs, for everything the service logs, stores or answers: database
//! URLs in startup errors, repository URLs in jobs, queue payloads and logs.

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// Query parameters whose values are secrets: any name containing one of these (ASCII case
/// insensitive), e.g. `password`, `sslpassword`, `access_token`, `api_key`, `X-Amz-Signature`.
const SECRET_PARAMETERS: [&str; 7] = ["pass", "pwd", "secret", "token", "key", "auth", "sig"];

/// Schemes whose bare user name is not a secret (`postgres://postgres@host`, `ssh://git@host`);
/// elsewhere (`https://TOKEN@host`) a user name alone is often a token and is redacted.
const PUBLIC_USER_SCHEMES: [&str; 4] = ["postgres", "postgresql", "ssh", "git+ssh"];

/// A URL with its secrets replaced by `***`: the password of its user info (and the user name
/// too, unless the scheme uses plain user names), and the values of secret-looking query
/// parameters. Strings that are not `scheme://` URLs come back unchanged, except for the
/// password of an scp-like `user:password@host:path`.
pub fn redact_url(url: &str) -> String {
    let (head, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => return redact_scp_like(url),
    };
    let scheme = head.trim_end_matches("://").to_ascii_lowercase();
    // The authority ends at the first '/', '?' or '#'; user info is what precedes its last '@'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            format!("{}{host}", redact_userinfo(userinfo, &scheme))
        }
        None => authority.to_owned(),
    };
    format!("{head}{authority}{}", redact_query(tail))
}

fn redact_userinfo(userinfo: &str, scheme: &str) -> String {
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:{REDACTED}"),
        None if PUBLIC_USER_SCHEMES.contains(&scheme) => userinfo.to_owned(),
        None => REDACTED.to_owned(),
    }
}

/// `user:password@host:path` → `user:***@host:path` (the password, never the user, which ssh needs).
fn redact_scp_like(location: &str) -> String {
    let before_path = location.split('/').next().unwrap_or(location);
    match before_path.rfind('@') {
        Some(at) => {
            let (userinfo, rest) = location.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{REDACTED}{rest}"),
                None => location.to_owned(),
            }
        }
        None => location.to_owned(),
    }
}

/// Redacts secret query parameter values in `tail` (the path, query and fragment of a URL).
fn redact_query(tail: &str) -> String {
    let Some(question) = tail.find('?') else {
        return tail.to_owned();
    };
    let (path, query_and_fragment) = tail.split_at(question + 1);
    let (query, fragment) = match query_and_fragment.find('#') {
        Some(hash) => query_and_fragment.split_at(hash),
        None => (query_and_fragment, ""),
    };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => format!("{name}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}{}{fragment}", redacted.join("&"))
}

fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETERS.iter().any(|secret| name.contains(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_database_urls() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }

    #[test]
    fn secret_query_parameters_are_redacted() {
        assert_eq!(
            redact_url("postgres://db/x?user=app&password=hunter2&sslmode=disable"),
            "postgres://db/x?user=app&password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("https://h/r.git?private_token=abc&SSLPassword=def#frag"),
            "https://h/r.git?private_token=***&SSLPassword=***#frag"
        );
        assert_eq!(
            redact_url("postgres://db/x?application_name=svc"),
            "postgres://db/x?application_name=svc"
        );
    }

    #[test]
    fn tokens_in_user_names_of_web_urls_are_redacted() {
        assert_eq!(
            redact_url("https://ghp_abc123@github.com/a/b.git"),
            "https://***@github.com/a/b.git"
        );
        assert_eq!(
            redact_url("https://x-access-token:ghp_abc@github.com/a/b"),
            "https://x-access-token:***@github.com/a/b"
        );
        // An '@' in the path is not user info.
        assert_eq!(
            redact_url("https://example.com/@scope/pkg"),
            "https://example.com/@scope/pkg"
        );
        assert_eq!(
            redact_url("ssh://git@github.com/a/b.git"),
            "ssh://git@github.com/a/b.git"
        );
    }

    #[test]
    fn scp_like_locations_keep_their_user_and_lose_a_password() {
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        assert_eq!(
            redact_url("git:pw@github.com:a/b.git"),
            "git:***@github.com:a/b.git"
        );
        assert_eq!(redact_url("/srv/repos/a@b"), "/srv/repos/a@b");
    }
}
