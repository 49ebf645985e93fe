//! Basic auth against the running binary: good, wrong, unknown, missing and malformed
//! credentials; a concurrent burst; the CVE-2022-46146 cache-poisoning sequence.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{Exporter, Response, http_request};
use crate::web_support::{TempDir, basic};

// From tests/fixtures/web/users.good.yml: alice/alice-password, bob/bob-password (cost 10).
const ALICE_HASH: &str = "$2y$10$PaHX.GB50EaBEccDJXvS6uz4lMpXtVFq/gcF/76ju7RTp/nXe2GOy";
const BOB_HASH: &str = "$2y$10$NrSs.WJ//.7iF.vQ15eTmOVxcXAYa9157QG47tUVPUPslKDtCg1Fe";
/// exporter-toolkit's fixed hash for unknown users (of "fakepassword").
const TOOLKIT_FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";

fn start(dir: &TempDir, extra: &[&str]) -> Exporter {
    let config = dir.write(
        "web.yml",
        &format!(
            "basic_auth_users:\n  alice: {ALICE_HASH}\n  bob: {BOB_HASH}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        ),
    );
    let mut args = vec!["--web.config.file".to_string(), config.display().to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Exporter::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn get(addr: SocketAddr, path: &str, authorization: Option<&str>) -> Response {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n"),
    )
    .expect("request")
}

fn login(addr: SocketAddr, user: &str, password: &str) -> u16 {
    get(addr, "/metrics", Some(&basic(&format!("{user}:{password}")))).status
}

#[test]
fn web_auth_good_wrong_unknown_missing_malformed() {
    let dir = TempDir::new("auth");
    let exporter = start(&dir, &[]);
    let addr = exporter.addr;

    let ok = get(addr, "/metrics", Some(&basic("alice:alice-password")));
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("libproc_build_info"));
    assert_eq!(ok.header("x-frame-options"), Some("deny"));
    assert_eq!(login(addr, "bob", "bob-password"), 200);

    let mut refused = vec![
        ("wrong password", Some(basic("alice:bob-password"))),
        ("unknown user", Some(basic("mallory:alice-password"))),
        ("empty user", Some(basic(":alice-password"))),
        ("missing header", None),
        ("not base64", Some("Basic !!!!".to_string())),
        ("other scheme", Some("Bearer YWxpY2U6YWxpY2UtcGFzc3dvcmQ=".to_string())),
        ("no colon", Some(basic("alice"))),
        ("no credentials", Some("Basic".to_string())),
        ("bad padding", Some("Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ".to_string())),
        ("huge", Some(format!("Basic {}", "QUFB".repeat(3000)))),
    ];
    // The user name is compared exactly.
    refused.push(("user case", Some(basic("Alice:alice-password"))));
    for (what, authorization) in &refused {
        for path in ["/metrics", "/", "/nope"] {
            let r = get(addr, path, authorization.as_deref());
            assert_eq!(r.status, 401, "{what} on {path}: {r:?}");
            assert_eq!(r.header("www-authenticate"), Some("Basic"), "{what}");
            assert_eq!(r.header("x-frame-options"), Some("deny"), "configured headers on 401 too");
            assert!(!r.body.contains("libproc_"), "{what}: leaked metrics");
        }
    }
    // Authenticated, the usual routing applies.
    assert_eq!(get(addr, "/nope", Some(&basic("alice:alice-password"))).status, 404);
}

/// 150 good and 150 bad logins at once (bad ones all different, so each costs a bcrypt):
/// every one answered, and correctly.
#[test]
fn web_auth_150_good_and_150_bad_concurrent_logins() {
    let dir = TempDir::new("auth-burst");
    let exporter = start(&dir, &["--web.max-requests=0"]);
    let addr = exporter.addr;
    let started = Instant::now();
    // Interleaved: request i is good for i < 150 (in a scrambled start order).
    let threads: Vec<_> = (0..300)
        .map(|n| (n * 7) % 300)
        .map(|i| {
            std::thread::spawn(move || {
                let (authorization, want) = match (i < 150, i % 4) {
                    (true, 0 | 2) => (Some(basic("alice:alice-password")), 200),
                    (true, _) => (Some(basic("bob:bob-password")), 200),
                    (false, 0) => (Some(basic(&format!("alice:wrong-{i}"))), 401),
                    (false, 1) => (Some(basic(&format!("user{i}:bob-password"))), 401),
                    (false, 2) => (None, 401),
                    (false, _) => (Some(format!("Basic !{i}")), 401),
                };
                let r = get(addr, "/metrics", authorization.as_deref());
                (i, r.status, want)
            })
        })
        .collect();
    let mut wrong = Vec::new();
    let (mut good, mut bad) = (0, 0);
    for t in threads {
        let (i, got, want) = t.join().expect("client thread");
        if want == 200 {
            good += 1
        } else {
            bad += 1
        }
        if got != want {
            wrong.push(format!("request {i}: {got}, expected {want}"));
        }
    }
    assert_eq!((good, bad), (150, 150));
    println!("300 concurrent logins answered in {:?}", started.elapsed());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// An unknown user costs a bcrypt check like a wrong password does, so timing does not
/// reveal which users exist.
#[test]
fn web_auth_unknown_user_costs_like_a_wrong_password() {
    let dir = TempDir::new("auth-timing");
    let exporter = start(&dir, &[]);
    let addr = exporter.addr;
    let median = |make: &dyn Fn(usize) -> (String, String)| {
        let mut times: Vec<Duration> = (0..7)
            .map(|i| {
                let (user, password) = make(i);
                let t = Instant::now();
                assert_eq!(login(addr, &user, &password), 401);
                t.elapsed()
            })
            .collect();
        times.sort();
        times[3]
    };
    let wrong = median(&|i| ("alice".into(), format!("guess-{i}")));
    let unknown = median(&|i| (format!("nobody{i}"), format!("guess-{i}")));
    let malformed = {
        let t = Instant::now();
        assert_eq!(get(addr, "/metrics", Some("Basic !!!!")).status, 401);
        t.elapsed()
    };
    println!(
        "median 401 time: wrong password {wrong:?}, unknown user {unknown:?}; malformed {malformed:?}"
    );
    let ratio = unknown.as_secs_f64() / wrong.as_secs_f64();
    assert!((0.33..3.0).contains(&ratio), "unknown user {unknown:?} vs wrong password {wrong:?}");
}

/// CVE-2022-46146 (exporter-toolkit's TestByPassBasicAuthVuln): the cache was keyed by
/// `user + hash + password`, so a login as the unknown user `alice<alice's hash>` with the
/// fake hash's password cached "true" under the same key as `alice` with the password
/// `<fake hash>fakepassword`. Our decoy for unknown users is a configured hash, so both
/// variants are tried: every step must be 401, and alice must still get in with her own
/// password afterwards.
#[test]
fn web_auth_cve_2022_46146_cache_poisoning_gets_401() {
    let dir = TempDir::new("auth-cve");
    let exporter = start(&dir, &[]);
    let addr = exporter.addr;
    let attempts = [
        (format!("alice{ALICE_HASH}"), "fakepassword".to_string()),
        ("alice".to_string(), format!("{TOOLKIT_FAKE_HASH}fakepassword")),
        (format!("alice{ALICE_HASH}"), "bob-password".to_string()),
        ("alice".to_string(), format!("{BOB_HASH}bob-password")),
        (format!("alice{BOB_HASH}"), "bob-password".to_string()),
        ("alice".to_string(), format!("{ALICE_HASH}bob-password")),
        (format!("bob{BOB_HASH}"), "alice-password".to_string()),
        ("bob".to_string(), format!("{ALICE_HASH}alice-password")),
        ("bob".to_string(), format!("{BOB_HASH}alice-password")),
    ];
    for round in 0..2 {
        for (user, password) in &attempts {
            assert_eq!(login(addr, user, password), 401, "round {round}: {user}:{password}");
        }
    }
    assert_eq!(login(addr, "alice", "alice-password"), 200);
}
