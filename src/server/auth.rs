//! HTTP basic auth against bcrypt hashes, as prometheus/exporter-toolkit does it, with its
//! lessons applied, and made so a flood of bad logins cannot be turned against scrapes or
//! against the first login of a real user (issue 14):
//! - a user we do not know still costs one bcrypt check (against a configured hash), and every
//!   configured hash has the same cost ([`check_costs`]), so response times do not tell which
//!   users exist;
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

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use base64::Engine as _;
use bcrypt::HashParts;
use ring::digest;
use tokio::sync::watch;

/// Why a request carries no usable credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// The value does not start with the `Basic ` scheme.
    NotBasic,
    /// The credentials are not valid base64.
    BadBase64,
    /// The decoded credentials have no `:` between user and password.
    NoColon,
}

/// Credentials from an `Authorization: Basic` header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Everything before the first `:`.
    pub user: Vec<u8>,
    /// Everything after it.
    pub password: Vec<u8>,
}

/// Parses an `Authorization` header value the way Go's `Request.BasicAuth` does: the scheme
/// `Basic` in any case, one space, standard base64 with padding, split at the first colon.
pub fn parse_basic(value: &[u8]) -> Result<Credentials, AuthError> {
    const PREFIX: &[u8] = b"basic ";
    if value.len() < PREFIX.len() || !value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return Err(AuthError::NotBasic);
    }
    let decoded = decode_base64(&value[PREFIX.len()..]).ok_or(AuthError::BadBase64)?;
    let colon = decoded.iter().position(|&b| b == b':').ok_or(AuthError::NoColon)?;
    Ok(Credentials { user: decoded[..colon].to_vec(), password: decoded[colon + 1..].to_vec() })
}

/// The `Authorization` value a client sends for `user:password` (the inverse of
/// [`parse_basic`]; for tests and probes).
pub fn encode_basic(user_password: &[u8]) -> String {
    format!("Basic {}", BASE64.encode(user_password))
}

/// Standard base64 (RFC 4648 section 4) as Go's `StdEncoding` decodes it: padding required
/// and canonical, and no bits set past the last byte (the `base64` crate's `STANDARD` engine
/// refuses both, so "YR==" and "YTpi=" are errors as Go makes them).
const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// `input` decoded as [`BASE64`]; `None` for anything it refuses.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(input).ok()
}

/// Why a `basic_auth_users` hash is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HashError {
    /// It does not parse as a bcrypt hash (the parser's reason).
    NotBcrypt(String),
    /// Its cost is outside what bcrypt allows.
    Cost(u32),
    /// Two users' hashes have different costs: (user, cost) of the cheapest and the costliest.
    MixedCosts {
        /// The user with the cheapest hash, and its cost.
        cheapest: (String, u32),
        /// The user with the costliest hash, and its cost.
        costliest: (String, u32),
    },
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::NotBcrypt(why) => {
                write!(f, "not a bcrypt hash ({why}); make one with `htpasswd -nBC 10 USER`")
            }
            HashError::Cost(cost) => write!(f, "bcrypt cost {cost} is outside 4..31"),
            HashError::MixedCosts { cheapest: (low_user, low), costliest: (high_user, high) } => {
                write!(
                    f,
                    "bcrypt costs differ ({low_user}: {low}, {high_user}: {high}), so a wrong password for {low_user} is answered sooner than one for a user who does not exist, which tells who exists; give every user the same cost, e.g. `htpasswd -nBC {high} {low_user}`"
                )
            }
        }
    }
}

impl std::error::Error for HashError {}

/// Checks that `hash` is a bcrypt hash: `$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost from 4 to
/// 31, and 53 characters of salt and digest.
pub fn check_hash(hash: &str) -> Result<(), HashError> {
    cost(hash).map(|_| ())
}

/// The cost of a bcrypt hash, checked as [`check_hash`] does.
fn cost(hash: &str) -> Result<u32, HashError> {
    let parts: HashParts =
        hash.parse().map_err(|e: bcrypt::BcryptError| HashError::NotBcrypt(e.to_string()))?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err(HashError::Cost(parts.get_cost()));
    }
    Ok(parts.get_cost())
}

/// Checks that every user's hash (each already passed by [`check_hash`]) has the same cost.
///
/// A wrong password costs one check against the user's own hash, an unknown user one check
/// against a decoy; if costs differ, no single decoy costs what every user's check costs,
/// and the time of a 401 tells whether the user exists (2 ms for a cost-4 user against 90 ms
/// for an unknown one). Refusing such a file makes the answer's time independent of the user
/// by construction; the alternative, padding cheaper answers to the costliest hash's time,
/// would have to guess that time under whatever load the machine is in. Rehashing is one
/// `htpasswd` command.
pub fn check_costs(users: &BTreeMap<String, String>) -> Result<(), HashError> {
    let mut costs = Vec::with_capacity(users.len());
    for (user, hash) in users {
        costs.push((cost(hash)?, user));
    }
    let cheapest = costs.iter().min();
    let costliest = costs.iter().max();
    match (cheapest, costliest) {
        (Some(&(low, low_user)), Some(&(high, high_user))) if low != high => {
            Err(HashError::MixedCosts {
                cheapest: (low_user.clone(), low),
                costliest: (high_user.clone(), high),
            })
        }
        _ => Ok(()),
    }
}

/// Most cached verdicts; past it an arbitrary one is evicted, so the cache stays bounded
/// whatever an attacker sends.
pub const CACHE_CAPACITY: usize = 1024;

/// Most bcrypt checks waiting for a worker; a login that would be one more is answered
/// [`Verdict::Busy`] at once. Its size bounds the wait: 16 checks at cost 10 (about 0.1 s
/// each) clear in under 2 s on one worker, well within Prometheus's default 10 s scrape
/// timeout, so a first login that is admitted is answered in time. It is not
/// `--web.max-requests`: that flag bounds scrapes, which share one cheap collection; each
/// check here is a tenth of a second of a core, and a deeper queue only makes every admitted
/// login wait longer.
pub const CHECKS_QUEUED: usize = 16;

/// How many threads run bcrypt: half the cores (at least 1, at most 4), so checks never take
/// the whole machine from the collection and the async threads, whatever arrives.
pub fn bcrypt_workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / 2).clamp(1, 4)
}

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

/// One bcrypt check waiting for a worker.
struct Job {
    /// What is checked; `key.hash` is the hash the password is verified against.
    key: CacheKey,
    /// The password itself (the key holds only its digest).
    password: Vec<u8>,
    /// The user is configured; an unknown user's verdict is false whatever bcrypt says.
    known: bool,
    /// Where the verdict goes, to every request waiting for these credentials; it has no
    /// receivers once they have all been dropped (their clients went away).
    answer: Answer,
}

/// The verdict of one check, `None` until a worker has it.
type Answer = Arc<watch::Sender<Option<bool>>>;

/// What the request path and the workers share.
struct State {
    /// Verdicts so far, at most [`CACHE_CAPACITY`]; workers insert, requests read.
    cache: Mutex<HashMap<CacheKey, bool>>,
    /// Checks queued or running, so a request for the same credentials waits for that check
    /// rather than queueing another. Requests insert; the worker removes the entry when it
    /// answers or skips the check.
    pending: Mutex<HashMap<CacheKey, Answer>>,
    /// Checks waiting for a worker, at most [`CHECKS_QUEUED`] with a client still waiting.
    waiting: Mutex<Waiting>,
    /// Signalled when a check is queued or the authenticator is dropped.
    ready: Condvar,
    /// bcrypt checks run so far (tests read it).
    checks: AtomicU64,
    /// Checks skipped because their client had gone before a worker took them.
    cancelled: AtomicU64,
}

impl State {
    fn cached(&self, key: &CacheKey) -> Option<bool> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    fn remember(&self, key: CacheKey, verdict: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(key, verdict);
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<CacheKey, Answer>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` unless [`CHECKS_QUEUED`] checks with a client still waiting are queued;
    /// checks whose clients have all gone are dropped from the queue to make room. Called
    /// with `pending` locked, so nobody joins a check as it is dropped.
    fn enqueue(&self, job: Job, pending: &mut HashMap<CacheKey, Answer>) -> Result<(), Job> {
        let mut waiting = self.waiting();
        if waiting.jobs.len() >= CHECKS_QUEUED {
            let before = waiting.jobs.len();
            waiting.jobs.retain(|queued| {
                let wanted = queued.answer.receiver_count() > 0;
                if !wanted {
                    pending.remove(&queued.key);
                }
                wanted
            });
            let dropped = (before - waiting.jobs.len()) as u64;
            self.cancelled.fetch_add(dropped, Ordering::Relaxed);
        }
        if waiting.jobs.len() >= CHECKS_QUEUED {
            return Err(job);
        }
        waiting.jobs.push_back(job);
        self.ready.notify_one();
        Ok(())
    }

    /// One job, on a worker thread.
    fn run(&self, job: Job) {
        {
            // Under the lock a request takes to join this check, so none joins as it is
            // skipped.
            let mut pending = self.pending();
            if job.answer.receiver_count() == 0 {
                pending.remove(&job.key);
                self.cancelled.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let verdict = match self.cached(&job.key) {
            Some(verdict) => verdict,
            None => {
                self.checks.fetch_add(1, Ordering::Relaxed);
                // A panic would end this worker and leave the check pending for ever, with
                // every later login of these credentials waiting on it: count it a mismatch.
                let matched =
                    std::panic::catch_unwind(|| bcrypt::verify(&job.password, &job.key.hash))
                        .is_ok_and(|verified| verified.unwrap_or(false));
                let verdict = matched && job.known;
                // Remembered even if the client has gone meanwhile: its retry is then
                // answered at once.
                self.remember(job.key.clone(), verdict);
                verdict
            }
        };
        let mut pending = self.pending();
        pending.remove(&job.key);
        job.answer.send_replace(Some(verdict));
    }
}

/// Checks credentials against `basic_auth_users`.
pub struct Authenticator {
    users: HashMap<Vec<u8>, Arc<str>>,
    /// What an unknown user's password is checked against: a configured hash (all have one
    /// cost, see [`check_costs`]), so the check costs what a real one does. Its verdict is
    /// never used.
    decoy: Arc<str>,
    state: Arc<State>,
}

/// The queue of checks, and whether the workers should stop.
struct Waiting {
    /// Oldest first.
    jobs: VecDeque<Job>,
    /// Set when the authenticator is dropped; workers then stop.
    closed: bool,
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

/// Why the authenticator could not start.
#[derive(Debug)]
pub struct StartError(std::io::Error);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "starting the bcrypt threads for basic_auth_users: {}", self.0)
    }
}

impl std::error::Error for StartError {}

impl Authenticator {
    /// An authenticator for `users` (name -> bcrypt hash, already checked by
    /// [`check_hash`] and [`check_costs`]), with [`bcrypt_workers`] threads.
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
        // The costliest, should a caller have skipped check_costs.
        let decoy = users
            .values()
            .max_by_key(|h| h.parse::<HashParts>().map(|p| p.get_cost()).unwrap_or(0))
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

/// Starts worker number `i`, which runs the checks queued in `state`.
fn start_worker(i: usize, state: &Arc<State>) -> Result<(), StartError> {
    let state = state.clone();
    // A plain thread, not tokio's blocking pool: a check in progress must not hold up the
    // runtime's shutdown, and it cannot take a thread something else needs.
    std::thread::Builder::new()
        .name(format!("bcrypt-{i}"))
        .spawn(move || work(&state))
        .map(|_| ())
        .map_err(StartError)
}

/// A worker: runs queued checks, oldest first, until the authenticator is dropped.
fn work(state: &State) {
    loop {
        let job = {
            let mut waiting = state.waiting();
            loop {
                if waiting.closed {
                    return;
                }
                if let Some(job) = waiting.jobs.pop_front() {
                    break job;
                }
                waiting = state.ready.wait(waiting).unwrap_or_else(|p| p.into_inner());
            }
        };
        state.run(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    // alice-password at cost 10 (tests/fixtures/web/users.good.yml); carol-password
    // (tests/fixtures/web/tls-users.good.yml) and dave-password at cost 4, which keeps these
    // tests fast.
    const ALICE: &str = "$2y$10$PaHX.GB50EaBEccDJXvS6uz4lMpXtVFq/gcF/76ju7RTp/nXe2GOy";
    const CAROL: &str = "$2y$04$cWeJSkPEThTyMQkRzs.e1ecZxSx8/jpwDY8JdlHp6ejbU/zGUdGC2";
    const DAVE: &str = "$2y$04$zgKhfHXqI4UvbQ1EYBOWru.BWSUIXJKuoVd9YGjvo4FTylGrEnUV.";

    fn basic(user_pass: &str) -> Vec<u8> {
        encode_basic(user_pass.as_bytes()).into_bytes()
    }

    fn encode(input: &[u8]) -> String {
        encode_basic(input).split_off("Basic ".len())
    }

    fn users(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter().map(|(u, h)| (u.to_string(), h.to_string())).collect()
    }

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

    #[test]
    fn parse_basic_follows_go() {
        assert_eq!(
            parse_basic(&basic("alice:pa:ss")),
            Ok(Credentials { user: b"alice".to_vec(), password: b"pa:ss".to_vec() })
        );
        assert_eq!(
            parse_basic(b"bAsIc YTpi"),
            Ok(Credentials { user: b"a".to_vec(), password: b"b".to_vec() })
        );
        assert_eq!(parse_basic(b"Bearer abc"), Err(AuthError::NotBasic));
        assert_eq!(parse_basic(b"Basic"), Err(AuthError::NotBasic));
        assert_eq!(parse_basic(b"Basic  YTpi"), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YTpi="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YWJj"), Err(AuthError::NoColon));
        assert_eq!(parse_basic(b"Basic YQ=="), Err(AuthError::NoColon));
        // "YR==" has bits set past the last byte: not canonical.
        assert_eq!(parse_basic(b"Basic YR=="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic ===="), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic YQ==YTpi"), Err(AuthError::BadBase64));
        assert_eq!(parse_basic(b"Basic \xff\xfe"), Err(AuthError::BadBase64));
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode_base64(encode(&data).as_bytes()), Some(data));
        }
    }

    #[test]
    fn hashes_are_checked() {
        assert!(check_hash(ALICE).is_ok());
        assert!(check_hash("$2y$10$short").is_err());
        assert!(check_hash("plain").is_err());
        assert_eq!(check_hash(&ALICE.replace("$10$", "$03$")), Err(HashError::Cost(3)));
        assert!(check_hash(&ALICE.replace("$2y$", "$1$")).is_err());
    }

    #[test]
    fn mixed_costs_are_refused_and_equal_ones_accepted() {
        assert_eq!(check_costs(&users(&[("carol", CAROL), ("dave", DAVE)])), Ok(()));
        assert_eq!(check_costs(&users(&[])), Ok(()));
        let mixed = check_costs(&users(&[("alice", ALICE), ("carol", CAROL), ("dave", DAVE)]));
        assert_eq!(
            mixed,
            Err(HashError::MixedCosts {
                cheapest: ("carol".into(), 4),
                costliest: ("alice".into(), 10)
            })
        );
        let line = mixed.unwrap_err().to_string();
        assert!(line.contains("carol: 4, alice: 10") && !line.contains('\n'), "{line}");
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
