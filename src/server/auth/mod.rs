//! HTTP basic auth against bcrypt hashes, as prometheus/exporter-toolkit does it, with its
//! lessons applied, and made so a flood of bad logins cannot be turned against scrapes or
//! against the first login of a real user (issue 14):
//! - a user we do not know still costs one bcrypt check, against a configured hash of the
//!   cost most users have, so response times do not tell which users exist unless a user's
//!   hash has another cost; those users are named at start-up ([`cost_report`]), and no
//!   wrong login costs more than that user's own hash;
//! - verdicts are cached in a bounded map keyed by the tuple (user, hash, password digest),
//!   and a cached verdict is answered at once, never behind a bcrypt check. CVE-2022-46146
//!   was a cache keyed by the concatenation `user + hash + password`, which a crafted user
//!   name could make equal to another user's key; a tuple cannot be forged that way, and an
//!   unknown user's verdict is false whatever bcrypt says;
//! - bcrypt runs on a few threads of its own ([`bcrypt_workers`]), not on tokio's blocking
//!   pool nor the async threads, so it never takes every core;
//! - at most [`CHECKS_QUEUED`] checks wait for those threads; a login beyond that is answered
//!   [`Verdict::Busy`] (503) at once instead of queueing without end;
//! - concurrent requests with the same credentials wait for one check between them;
//! - a queued check whose clients have all gone (their request futures dropped) is skipped
//!   when its turn comes: an abandoned login costs no bcrypt unless a thread was idle when it
//!   came.
//!
//! # Layout
//! - `mod.rs`: [`Authenticator`]: the cache key, the verdict, the request path.
//! - `basic`: the `Authorization: Basic` header.
//! - `hash`: the bcrypt hashes' checks at start-up.
//! - `pool`: the bcrypt threads, their queue and the verdict cache.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ring::digest;
use tokio::sync::watch;

mod basic;
mod hash;
mod pool;

pub use basic::{AuthError, Credentials, encode_basic, parse_basic};
pub use hash::{CostReport, HashError, check_hash, cost_report};
pub use pool::{CACHE_CAPACITY, CHECKS_QUEUED, StartError, bcrypt_workers};

use pool::{Job, State, Waiting, start_worker};

/// What [`Authenticator::check`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A configured user with the right password.
    Allow,
    /// Missing, malformed or wrong credentials, or an unknown user.
    Deny,
    /// The credentials are not cached and [`CHECKS_QUEUED`] checks already wait: not
    /// checked; the client should retry shortly.
    Busy,
}

/// The cache key: fields compared separately, so no choice of user name can make two
/// different (user, hash, password) triples equal. The password is kept as a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    user: Vec<u8>,
    hash: Arc<str>,
    password: [u8; 32],
}

/// Checks credentials against `basic_auth_users`.
pub struct Authenticator {
    users: HashMap<Vec<u8>, Arc<str>>,
    /// What an unknown user's password is checked against: a configured hash of the cost
    /// most users have ([`CostReport::decoy_cost`]), so the check costs what theirs does. Its
    /// verdict is never used.
    decoy: Arc<str>,
    state: Arc<State>,
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        self.state.waiting().closed = true;
        self.state.ready.notify_all();
    }
}

/// A fixed bcrypt hash (cost 10, of a random string nobody knows) for a config whose
/// `basic_auth_users` is empty.
const FALLBACK_DECOY: &str = "$2y$10$n.IgVHpm1.l9z34eBg1rpOjFhfoBCPizNlp2H2UPIWPyeA.2XHvCG";

impl Authenticator {
    /// An authenticator for `users` (name -> bcrypt hash, already checked by
    /// [`check_hash`]), with [`bcrypt_workers`] threads.
    pub fn new<'a>(
        users: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Result<Authenticator, StartError> {
        Authenticator::with_workers(users, bcrypt_workers())
    }

    fn with_workers<'a>(
        users: impl IntoIterator<Item = (&'a String, &'a String)>,
        workers: usize,
    ) -> Result<Authenticator, StartError> {
        let authenticator = Authenticator::unstarted(users);
        for i in 0..workers {
            start_worker(i, &authenticator.state)?;
        }
        Ok(authenticator)
    }

    /// An authenticator whose checks wait until [`start_worker`] starts a worker.
    fn unstarted<'a>(users: impl IntoIterator<Item = (&'a String, &'a String)>) -> Authenticator {
        let users: HashMap<Vec<u8>, Arc<str>> = users
            .into_iter()
            .map(|(u, h)| (u.as_bytes().to_vec(), Arc::from(h.as_str())))
            .collect();
        // The cost most users have, lowest on a tie (as cost_report decides; the hashes were
        // checked, so every cost parses).
        let common = hash::most_common(users.values().map(|h| hash::cost_of(h)));
        let decoy = users
            .values()
            .find(|h| Some(hash::cost_of(h)) == common)
            .cloned()
            .unwrap_or_else(|| Arc::from(FALLBACK_DECOY));
        let state = Arc::new(State {
            cache: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            waiting: Mutex::new(Waiting { jobs: VecDeque::new(), closed: false }),
            ready: Condvar::new(),
            checks: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        });
        Authenticator { users, decoy, state }
    }

    /// Whether the `Authorization` header value (if any) names a configured user with the
    /// right password. Malformed or missing credentials cost no bcrypt, cached ones are
    /// answered without waiting, and others wait for a worker unless [`CHECKS_QUEUED`]
    /// already do ([`Verdict::Busy`]). Dropping the future before a worker takes the check
    /// cancels it.
    pub async fn check(&self, header: Option<&[u8]>) -> Verdict {
        let Some(Ok(credentials)) = header.map(parse_basic) else {
            return Verdict::Deny;
        };
        let (key, known) = self.key(&credentials);
        let allow = |verdict: bool| if verdict && known { Verdict::Allow } else { Verdict::Deny };
        if let Some(verdict) = self.state.cached(&key) {
            return allow(verdict);
        }
        let mut verdict = {
            let mut pending = self.state.pending();
            // A worker may have answered between the look-up above and the lock.
            if let Some(verdict) = self.state.cached(&key) {
                return allow(verdict);
            }
            match pending.get(&key) {
                Some(answer) => answer.subscribe(),
                None => {
                    let (answer, verdict) = watch::channel(None);
                    let answer = Arc::new(answer);
                    let job = Job {
                        key: key.clone(),
                        password: credentials.password,
                        known,
                        answer: answer.clone(),
                    };
                    if self.state.enqueue(job, &mut pending).is_err() {
                        return Verdict::Busy;
                    }
                    pending.insert(key, answer);
                    verdict
                }
            }
        };
        match verdict.wait_for(Option::is_some).await {
            Ok(verdict) => allow(verdict.unwrap_or(false)),
            // The worker died mid-check.
            Err(_) => Verdict::Deny,
        }
    }

    /// The cache key for `credentials`, and whether the user is configured.
    fn key(&self, credentials: &Credentials) -> (CacheKey, bool) {
        let (hash, known) = match self.users.get(&credentials.user) {
            Some(hash) => (hash.clone(), true),
            None => (self.decoy.clone(), false),
        };
        let mut password = [0u8; 32];
        password.copy_from_slice(digest::digest(&digest::SHA256, &credentials.password).as_ref());
        (CacheKey { user: credentials.user.clone(), hash, password }, known)
    }

    /// bcrypt checks run so far.
    pub fn bcrypt_checks(&self) -> u64 {
        self.state.checks.load(Ordering::Relaxed)
    }

    /// Checks skipped so far because their client had gone.
    pub fn cancelled_checks(&self) -> u64 {
        self.state.cancelled.load(Ordering::Relaxed)
    }

    /// Verdicts cached now.
    #[cfg(test)]
    pub fn cached_verdicts(&self) -> usize {
        self.state.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// The hashes and headers the tests of every part of `auth` log in with.
#[cfg(test)]
mod fixtures {
    use std::collections::BTreeMap;

    // alice-password at cost 10 (tests/fixtures/web/users.good.yml); carol-password
    // (tests/fixtures/web/tls-users.good.yml) and dave-password at cost 4, which keeps these
    // tests fast.
    pub(super) const ALICE: &str = "$2y$10$PaHX.GB50EaBEccDJXvS6uz4lMpXtVFq/gcF/76ju7RTp/nXe2GOy";
    pub(super) const CAROL: &str = "$2y$04$cWeJSkPEThTyMQkRzs.e1ecZxSx8/jpwDY8JdlHp6ejbU/zGUdGC2";
    pub(super) const DAVE: &str = "$2y$04$zgKhfHXqI4UvbQ1EYBOWru.BWSUIXJKuoVd9YGjvo4FTylGrEnUV.";

    pub(super) fn basic(user_pass: &str) -> Vec<u8> {
        super::encode_basic(user_pass.as_bytes()).into_bytes()
    }

    pub(super) fn users(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    use super::fixtures::{CAROL, DAVE, basic, users};

    /// carol and dave, with `workers` bcrypt threads.
    fn auth_with(workers: usize) -> Authenticator {
        Authenticator::with_workers(&users(&[("carol", CAROL), ("dave", DAVE)]), workers)
            .expect("bcrypt threads")
    }

    fn auth() -> Authenticator {
        auth_with(2)
    }

    async fn allowed(a: &Authenticator, user_pass: &str) -> bool {
        match a.check(Some(&basic(user_pass))).await {
            Verdict::Allow => true,
            Verdict::Deny => false,
            Verdict::Busy => panic!("{user_pass}: busy"),
        }
    }

    /// Starts a check of `user_pass` and drops it at once, as hyper drops a request whose
    /// client has reset the connection: the check is queued, then abandoned.
    async fn abandon(a: &Authenticator, user_pass: &str) {
        let header = basic(user_pass);
        let polled_once = tokio::time::timeout(Duration::ZERO, a.check(Some(&header))).await;
        assert!(polled_once.is_err(), "{user_pass} was answered without a check");
    }

    #[tokio::test]
    async fn good_wrong_unknown_missing_and_malformed() {
        let a = auth();
        assert!(allowed(&a, "carol:carol-password").await);
        assert!(allowed(&a, "dave:dave-password").await);
        assert!(!allowed(&a, "carol:dave-password").await);
        assert!(!allowed(&a, "mallory:carol-password").await);
        assert_eq!(a.check(None).await, Verdict::Deny);
        assert_eq!(a.check(Some(b"Basic !!!!")).await, Verdict::Deny);
    }

    #[tokio::test]
    async fn unknown_users_cost_one_bcrypt_and_malformed_ones_none() {
        let a = auth();
        assert_eq!(a.check(Some(b"Basic !!!!")).await, Verdict::Deny);
        assert_eq!(a.check(None).await, Verdict::Deny);
        assert_eq!(a.bcrypt_checks(), 0);
        assert!(!allowed(&a, "mallory:x").await);
        assert_eq!(a.bcrypt_checks(), 1);
        // Against a configured hash, so it costs what carol's or dave's check costs.
        assert!([CAROL, DAVE].contains(&&*a.decoy));
    }

    /// Issue 24: with mixed costs an unknown user costs what most users cost, not the
    /// dearest hash (alice, cost 10, is the odd one out here).
    #[test]
    fn the_decoy_has_the_most_common_cost() {
        let a = Authenticator::unstarted(&users(&[
            ("alice", super::fixtures::ALICE),
            ("carol", CAROL),
            ("dave", DAVE),
        ]));
        assert_eq!(hash::cost_of(&a.decoy), 4);
        // A wrong password is checked against the user's own hash, never a dearer one; an
        // unknown user against the decoy.
        let key = |creds: &str| a.key(&parse_basic(&basic(creds)).unwrap());
        assert_eq!((&*key("carol:wrong").0.hash, key("carol:wrong").1), (CAROL, true));
        assert_eq!(&*key("alice:wrong").0.hash, super::fixtures::ALICE);
        assert_eq!((key("mallory:x").0.hash, key("mallory:x").1), (a.decoy.clone(), false));
        let a = Authenticator::unstarted(&users(&[]));
        assert_eq!(&*a.decoy, FALLBACK_DECOY);
    }

    #[tokio::test]
    async fn verdicts_are_cached_per_user_hash_and_password() {
        let a = auth();
        for _ in 0..3 {
            assert!(allowed(&a, "carol:carol-password").await);
            assert!(!allowed(&a, "carol:wrong").await);
        }
        assert_eq!(a.bcrypt_checks(), 2);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let a = auth();
        for i in 0..CACHE_CAPACITY + 50 {
            assert!(!allowed(&a, &format!("carol:wrong{i}")).await);
        }
        assert_eq!(a.cached_verdicts(), CACHE_CAPACITY);
    }

    /// CVE-2022-46146: the toolkit's cache key was `user + hash + password`. Logging in as
    /// the unknown user `carol<carol's hash>` with the decoy's password cached "true" under
    /// the same string as `carol` with password `<decoy hash>fakepassword`.
    #[tokio::test]
    async fn cve_2022_46146_cache_poisoning_is_refused() {
        let a = auth();
        let decoy = a.decoy.to_string();
        assert!(!allowed(&a, &format!("carol{CAROL}:carol-password")).await);
        assert!(!allowed(&a, &format!("carol:{decoy}carol-password")).await);
        assert!(!allowed(&a, &format!("carol{decoy}:carol-password")).await);
        assert!(allowed(&a, "carol:carol-password").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_are_answered_and_checked_once_each() {
        let a = Arc::new(auth());
        let mut tasks = Vec::new();
        for i in 0..CHECKS_QUEUED {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let (creds, expect) = match i % 4 {
                    0 => ("carol:carol-password".to_string(), true),
                    1 => (format!("carol:bad{i}"), false),
                    2 => (format!("nobody{i}:carol-password"), false),
                    _ => ("dave:dave-password".to_string(), true),
                };
                (allowed(&a, &creds).await, expect)
            }));
        }
        for t in tasks {
            let (got, expect) = t.await.unwrap();
            assert_eq!(got, expect);
        }
        let each = CHECKS_QUEUED as u64 / 4;
        assert_eq!(a.bcrypt_checks(), 1 + each + each + 1);
    }

    /// Issue 14, defect 3: checks beyond the queue are refused at once rather than queued
    /// without end; checks whose clients left hold no place in it; and a cached verdict is
    /// answered even when it is full.
    #[tokio::test]
    async fn checks_beyond_the_queue_are_busy_at_once_and_cached_ones_still_answered() {
        // No workers: whatever is queued stays queued.
        let a = Arc::new(Authenticator::unstarted(&users(&[("carol", CAROL), ("dave", DAVE)])));
        let (carol, _) = a.key(&parse_basic(&basic("carol:carol-password")).unwrap());
        a.state.remember(carol, true);
        for i in 0..CHECKS_QUEUED {
            abandon(&a, &format!("dave:gone{i}")).await;
        }
        let waiters: Vec<_> = (0..CHECKS_QUEUED)
            .map(|i| {
                let a = a.clone();
                tokio::spawn(async move { a.check(Some(&basic(&format!("dave:guess{i}")))).await })
            })
            .collect();
        for _ in 0..10_000 {
            if a.state.pending().len() == CHECKS_QUEUED
                && a.cancelled_checks() == CHECKS_QUEUED as u64
            {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(a.state.waiting().jobs.len(), CHECKS_QUEUED, "the abandoned checks made room");
        assert_eq!(a.cancelled_checks(), CHECKS_QUEUED as u64);
        assert!(waiters.iter().all(|w| !w.is_finished()), "a waiter was refused");
        assert_eq!(a.check(Some(&basic("dave:dave-password"))).await, Verdict::Busy);
        assert_eq!(a.check(Some(&basic("nobody:x"))).await, Verdict::Busy);
        assert!(allowed(&a, "carol:carol-password").await);
        assert_eq!(a.bcrypt_checks(), 0);
        for w in waiters {
            w.abort();
        }
    }

    /// Issue 14, defect 2: a check whose client went away before a worker took it is
    /// skipped, not hashed; the one still wanted behind them is answered.
    #[tokio::test]
    async fn a_check_whose_client_left_is_skipped() {
        let a = Authenticator::unstarted(&users(&[("carol", CAROL), ("dave", DAVE)]));
        let a = Arc::new(a);
        for i in 0..5 {
            abandon(&a, &format!("intruder{i}:guess{i}")).await;
        }
        let wanted = {
            let a = a.clone();
            tokio::spawn(async move { allowed(&a, "dave:dave-password").await })
        };
        tokio::task::yield_now().await;
        start_worker(0, &a.state).unwrap();
        assert!(wanted.await.unwrap());
        assert_eq!((a.bcrypt_checks(), a.cancelled_checks()), (1, 5));
    }
}
