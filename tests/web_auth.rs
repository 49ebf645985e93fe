//! Basic auth against the running binary: good, wrong, unknown, missing and malformed
//! credentials; a concurrent burst; the CVE-2022-46146 cache-poisoning sequence; floods of
//! bad logins that must not starve scrapes or first logins (issue 14).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::common::{Exporter, Response, http_request};
use crate::web_support::{TempDir, abandoned_request, basic, cpu_seconds, signal};

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
/// every one answered, and correctly, or with 503 where more checks were wanted than may
/// wait (75 distinct bad ones are); the good ones share two checks between them, and both
/// users get in once the burst is over.
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
    let (mut good, mut bad, mut busy) = (0, 0, 0);
    for t in threads {
        let (i, got, want) = t.join().expect("client thread");
        if want == 200 {
            good += 1
        } else {
            bad += 1
        }
        if got == 503 {
            busy += 1;
        } else if got != want {
            wrong.push(format!("request {i}: {got}, expected {want}"));
        }
    }
    assert_eq!((good, bad), (150, 150));
    println!("300 concurrent logins answered in {:?}, {busy} with 503", started.elapsed());
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(login(addr, "alice", "alice-password"), 200);
    assert_eq!(login(addr, "bob", "bob-password"), 200);
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

/// Sends `count` abandoned bad logins (each a distinct user and password, so none is
/// answered from the cache), one after the other, on a thread; returns how long that took.
fn flood(addr: SocketAddr, count: usize) -> std::thread::JoinHandle<Duration> {
    std::thread::spawn(move || {
        let started = Instant::now();
        for i in 0..count {
            abandoned_request(addr, &basic(&format!("intruder{i}:guess-{i}")));
        }
        started.elapsed()
    })
}

/// Issue 14, defect 2: each abandoned bad login left its bcrypt running, and 500 of them in
/// 3 s held an already-authenticated client's scrape for 32.5 s; SIGTERM afterwards took
/// 15.8 s. A cached client must keep its normal scrape time (a few ms) through the flood,
/// and the exporter must stop promptly after it.
#[test]
fn web_auth_abandoned_bad_logins_do_not_starve_a_cached_scrape() {
    let dir = TempDir::new("auth-flood");
    let exporter = start(&dir, &[]);
    let addr = exporter.addr;
    let pid = exporter.child.id();
    assert_eq!(login(addr, "alice", "alice-password"), 200, "alice's verdict is now cached");
    let cpu_before = cpu_seconds(pid);
    let flooding = flood(addr, 500);
    let mut slowest = Duration::ZERO;
    // Bounded: the flood takes about 3 s; scrape every 100 ms through it, then once after.
    for _ in 0..600 {
        let t = Instant::now();
        assert_eq!(login(addr, "alice", "alice-password"), 200);
        slowest = slowest.max(t.elapsed());
        if flooding.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let flood_took = flooding.join().expect("flood thread");
    let t = Instant::now();
    assert_eq!(login(addr, "alice", "alice-password"), 200);
    slowest = slowest.max(t.elapsed());
    let cpu = cpu_before.zip(cpu_seconds(pid)).map(|(a, b)| b - a);
    // Every client has gone: nothing should still be hashing for them.
    std::thread::sleep(Duration::from_secs(1));
    let quiet_from = cpu_seconds(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = quiet_from.zip(cpu_seconds(pid)).map(|(a, b)| b - a);

    let mut exporter = exporter;
    let t = Instant::now();
    signal(pid, libc::SIGTERM);
    let _ = exporter.log_after_exit();
    let stop_took = t.elapsed();
    println!(
        "500 abandoned bad logins in {flood_took:?}: slowest cached scrape {slowest:?}, exporter CPU {cpu:?} s during, {after:?} s in the 2 s from 1 s after, SIGTERM to exit {stop_took:?}"
    );
    // Generous: an idle exporter uses almost no CPU in 2 s; the defect kept every blocking
    // thread hashing for the gone clients (about 2 s of CPU per 2 s on 2 cores, for 20 s and
    // more). Only where /proc tells (Linux); the other bounds hold everywhere.
    if let Some(after) = after {
        assert!(after < 0.5, "{after} s of CPU in 2 s after every client had gone");
    }
    // Generous: a cached scrape of this small table takes milliseconds, the defect gave
    // 32.5 s; 2 s is slack for a loaded 2-core CI machine, not for a queue of bcrypts.
    assert!(slowest < Duration::from_secs(2), "a cached scrape took {slowest:?} during the flood");
    // Likewise: a prompt stop takes milliseconds, the defect 15.8 s.
    assert!(stop_took < Duration::from_secs(5), "SIGTERM after the flood took {stop_took:?}");
}

/// Issue 14, defect 3: a first login (nothing cached) queued behind every abandoned bad
/// login before it; alice timed out twice at 60 s. Checks whose client went away are
/// dropped before they start, so bob's first login is answered about as fast as usual.
#[test]
fn web_auth_first_login_is_not_starved_by_abandoned_logins() {
    let dir = TempDir::new("auth-first");
    let exporter = start(&dir, &[]);
    let addr = exporter.addr;
    let flooding = flood(addr, 500);
    // Let a backlog build up first (about 1 s of flood).
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    let answer = http_request(
        addr,
        &format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {}\r\n\r\n",
            basic("bob:bob-password")
        ),
    );
    let took = t.elapsed();
    let flood_took = flooding.join().expect("flood thread");
    let status = answer.map(|r| r.status).unwrap_or(0);
    println!(
        "bob's first login during 500 abandoned bad logins ({flood_took:?}): {status} after {took:?}"
    );
    // 503 (checks full) would be an honest answer too, but this flood's checks are all
    // abandoned, so there is room: bob must get in.
    assert_eq!(status, 200, "bob's first login after {took:?}");
    // Generous: one bcrypt (cost 10) takes about 0.1 s and at most a few run ahead of bob;
    // the defect made him wait behind hundreds (over 60 s).
    assert!(took < Duration::from_secs(5), "bob's first login took {took:?}");
}

/// Issue 14, "beyond the bound: 503 at once": more uncached logins than checks can run or
/// wait are refused at once with 503 and `Retry-After`, not queued without end; those
/// admitted get their 401; a cached client is answered throughout.
#[test]
fn web_auth_login_checks_beyond_the_bound_get_503_at_once() {
    let dir = TempDir::new("auth-bound");
    let exporter = start(&dir, &["--web.max-requests=0"]);
    let addr = exporter.addr;
    assert_eq!(login(addr, "alice", "alice-password"), 200);
    let started = Instant::now();
    let clients: Vec<_> = (0..120)
        .map(|i| {
            std::thread::spawn(move || {
                let t = Instant::now();
                let r = get(addr, "/metrics", Some(&basic(&format!("intruder{i}:guess-{i}"))));
                (r.status, r.header("retry-after").map(str::to_string), t.elapsed())
            })
        })
        .collect();
    // While the checks are full, the cached client still gets in (it never queues).
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(login(addr, "alice", "alice-password"), 200);
    let cached = t.elapsed();
    let answers: Vec<_> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    let denied = answers.iter().filter(|a| a.0 == 401).count();
    let slowest_503 = refused.iter().map(|a| a.2).max().unwrap_or_default();
    println!(
        "120 concurrent bad logins in {:?}: {denied} x 401, {} x 503 (slowest {slowest_503:?}); cached login meanwhile {cached:?}",
        started.elapsed(),
        refused.len()
    );
    assert_eq!(denied + refused.len(), answers.len(), "only 401 or 503: {answers:?}");
    assert!(!refused.is_empty(), "120 bcrypt checks at once were all queued: {answers:?}");
    assert!(refused.iter().all(|a| a.1.is_some()), "a 503 without Retry-After: {refused:?}");
    // Generous: a refusal costs no bcrypt and takes milliseconds; queueing behind the others
    // would take seconds.
    assert!(slowest_503 < Duration::from_secs(1), "a 503 took {slowest_503:?}");
    assert!(cached < Duration::from_secs(2), "the cached login took {cached:?}");
}

/// Issue 14, defect 5 found that with hashes of different costs a wrong password for the
/// cheap user (cost 4) was answered in 2.0 ms and an unknown user in 90.5 ms, which told who
/// exists. Issue 24: such files start all the same (the toolkit's own mixes 10, 12 and 18);
/// an unknown user costs the most common cost, and the start-up log says once which users
/// stand out and how to even them.
#[test]
fn web_auth_mixed_bcrypt_costs_start_and_name_the_users_that_stand_out() {
    let config = crate::common::fixture("web/mixed-costs.good.yml");
    let (code, stderr) =
        crate::web_support::check_config(&["--web.config.file", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("bcrypt costs differ")).collect();
    assert_eq!(lines.len(), 1, "one warning: {stderr}");
    for part in ["level=warn", "alice (cost 10)", "cost 4", "htpasswd -nBC 4"] {
        assert!(lines[0].contains(part), "the warning should say {part:?}: {}", lines[0]);
    }
    assert!(!lines[0].contains("carol") && !lines[0].contains("dave"), "{}", lines[0]);
}

#[test]
fn sighup_rereads_users_and_keeps_the_running_config_when_the_new_one_is_bad() {
    let dir = TempDir::new("sighup");
    let config = dir.write("web.yml", &format!("basic_auth_users:\n  alice: {ALICE_HASH}\n"));
    let mut exporter = Exporter::start(&["--web.config.file", &config.display().to_string()]);
    let addr = exporter.addr;
    let pid = exporter.child.id();
    assert_eq!(login(addr, "alice", "alice-password"), 200);
    assert_eq!(login(addr, "bob", "bob-password"), 401);

    // Waits for the exporter to log `line` `n` times in all (the reload is asynchronous).
    let logged = |exporter: &Exporter, line: &str, n: usize| {
        let until = Instant::now() + Duration::from_secs(20);
        while exporter.stderr.lock().unwrap().matches(line).count() < n {
            assert!(Instant::now() < until, "no {line:?} in the log");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // bob added, alice removed.
    dir.write("web.yml", &format!("basic_auth_users:\n  bob: {BOB_HASH}\n"));
    signal(pid, libc::SIGHUP);
    logged(&exporter, "web config reloaded", 1);
    assert_eq!(login(addr, "bob", "bob-password"), 200);
    assert_eq!(login(addr, "alice", "alice-password"), 401);
    assert!(exporter.stderr.lock().unwrap().contains("changes=\"+user bob,-user alice\""));

    // A broken file is reported and changes nothing.
    dir.write("web.yml", "basic_auth_users:\n  carol: not-a-bcrypt-hash\n");
    signal(pid, libc::SIGHUP);
    logged(&exporter, "web config not reloaded", 1);
    assert_eq!(login(addr, "bob", "bob-password"), 200);
    assert_eq!(login(addr, "carol", "x"), 401);

    signal(pid, libc::SIGTERM);
    let log = exporter.log_after_exit();
    assert!(log.contains("msg=stopped"), "SIGHUP must not end the exporter: {log}");
}

#[test]
fn sighup_without_a_web_config_does_not_stop_the_exporter() {
    // Before, SIGHUP's default action ended the process (exit 129, nothing logged).
    let mut exporter = Exporter::start(&[]);
    signal(exporter.child.id(), libc::SIGHUP);
    let until = Instant::now() + Duration::from_secs(20);
    while !exporter.stderr.lock().unwrap().contains("no --web.config.file to re-read") {
        assert!(exporter.child.try_wait().unwrap().is_none(), "SIGHUP ended the exporter");
        assert!(Instant::now() < until, "SIGHUP not logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(get(exporter.addr, "/metrics", None).status, 200);
}
