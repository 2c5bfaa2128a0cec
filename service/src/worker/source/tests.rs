use super::*;

fn remote(location: &str) -> Remote {
    match Source::parse(location) {
        Ok(Source::Remote(remote)) => remote,
        other => panic!("{location}: {other:?}"),
    }
}

fn policy(hosts: &[&str], schemes: &[Scheme]) -> RepositoryPolicy {
    RepositoryPolicy {
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        schemes: schemes.to_vec(),
        ..RepositoryPolicy::default()
    }
}

#[test]
fn locations_parse_into_local_and_remote_sources() {
    assert_eq!(
        Source::parse("/srv/repos/a").ok(),
        Some(Source::Local("/srv/repos/a".into()))
    );
    assert_eq!(
        Source::parse("file:///srv/repos/a").ok(),
        Some(Source::Local("/srv/repos/a".into()))
    );
    let https = remote("https://GitHub.com/a/b.git");
    assert_eq!(https.scheme, Scheme::Https);
    assert_eq!(https.host, Host::Domain("github.com".into()));
    assert_eq!(https.port, 443);
    let scp = remote("git@github.com:a/b.git");
    assert_eq!(scp.scheme, Scheme::Ssh);
    assert_eq!(scp.git_url, "git@github.com:a/b.git");
    let ssh = remote("ssh://git@[::1]:2222/a/b.git");
    assert_eq!(ssh.host, Host::Ip("::1".parse().expect("ip")));
    assert_eq!(ssh.port, 2222);
    for bad in [
        "relative/path",
        "--upload-pack=x",
        "ext::sh -c touch% /tmp/x",
        "https://",
        "https://host/a b",
        "https://bad_host!/x",
        "git@host:-oProxyCommand=x",
        "ssh://-oProxyCommand=x@host/a",
    ] {
        assert!(Source::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn credentials_never_reach_git() {
    assert_eq!(
        remote("https://user:secret@github.com/a/b.git?x=1#frag").git_url,
        "https://github.com/a/b.git?x=1"
    );
    assert_eq!(
        remote("https://ghp_token@github.com/a/b.git").git_url,
        "https://github.com/a/b.git"
    );
    assert_eq!(
        remote("ssh://git:secret@github.com/a/b.git").git_url,
        "ssh://git@github.com/a/b.git"
    );
    assert_eq!(
        remote("git:secret@github.com:a/b.git").git_url,
        "git@github.com:a/b.git"
    );
}

#[test]
fn the_policy_allows_configured_schemes_and_hosts_only() {
    let default = RepositoryPolicy::default();
    assert!(default
        .check(&Source::parse("https://github.com/a/b").expect("parse"))
        .is_ok());
    for refused in [
        "/srv/repos/a",
        "file:///srv/repos/a",
        "http://github.com/a/b",
        "git@github.com:a/b.git",
        "https://example.com/a/b",
        "https://github.com.evil.example/a/b",
        "git://github.com/a/b",
    ] {
        let checked = Source::parse(refused).and_then(|source| default.check(&source));
        assert!(checked.is_err(), "{refused}");
    }
    let wildcard = policy(&["*.example.com"], &[Scheme::Https, Scheme::Ssh]);
    for allowed in [
        "https://git.example.com/a",
        "https://example.com/a",
        "git@a.b.example.com:x",
    ] {
        let source = Source::parse(allowed).expect("parse");
        assert!(wildcard.check(&source).is_ok(), "{allowed}");
    }
    let source = Source::parse("https://notexample.com/a").expect("parse");
    assert!(wildcard.check(&source).is_err());
    let local = RepositoryPolicy {
        allow_local: true,
        ..RepositoryPolicy::default()
    };
    assert!(local
        .check(&Source::parse("/srv/repos/a").expect("parse"))
        .is_ok());
}

#[test]
fn non_public_ip_literals_are_refused_unless_private_networks_are_allowed() {
    let any = policy(&["*"], &[Scheme::Https, Scheme::Http, Scheme::Ssh]);
    for blocked in [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://[64:ff9b::a00:1]/x",
        "git@10.0.0.1:a/b.git",
    ] {
        let source = Source::parse(blocked).expect("parse");
        assert!(
            matches!(
                any.check(&source),
                Err(CheckoutError::BlockedAddress { .. })
            ),
            "{blocked}"
        );
    }
    let source = Source::parse("http://140.82.121.4/x").expect("parse");
    assert!(any.check(&source).is_ok());
    let private = RepositoryPolicy {
        allow_private_networks: true,
        ..any
    };
    let source = Source::parse("http://127.0.0.1/x").expect("parse");
    assert!(private.check(&source).is_ok());
}

#[test]
fn public_addresses_are_told_from_the_others() {
    for public in ["8.8.8.8", "140.82.121.4", "2606:4700::1111", "2a00:1450::1"] {
        assert!(is_public(public.parse().expect("ip")), "{public}");
    }
    for private in [
        "127.0.0.53",
        "10.0.0.1",
        "192.0.2.1",
        "198.18.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "2002:7f00:1::1",
    ] {
        assert!(!is_public(private.parse().expect("ip")), "{private}");
    }
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_after_resolution() {
    let any = policy(&["*"], &[Scheme::Https]);
    let remote = remote("https://localhost/a/b.git");
    assert!(any.check(&Source::Remote(remote.clone())).is_ok());
    let resolved = any.resolve(&remote).await;
    assert!(
        matches!(resolved, Err(CheckoutError::BlockedAddress { .. })),
        "{resolved:?}"
    );
    let private = RepositoryPolicy {
        allow_private_networks: true,
        ..any
    };
    let resolved = private.resolve(&remote).await.expect("localhost resolves");
    assert!(resolved.addresses.iter().all(|ip| ip.is_loopback()));
}
