//! The bcrypt worker pool and what it shares with the request path: the bounded queue of
//! checks, the checks pending that concurrent logins join, and the bounded verdict cache.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use tokio::sync::watch;

use super::CacheKey;

/// Most cached verdicts; past it an arbitrary one is evicted, so the cache stays bounded
/// whatever an attacker sends.
pub const CACHE_CAPACITY: usize = 1024;

/// Most bcrypt checks waiting for a worker; a login that would be one more is answered
/// [`Verdict::Busy`](super::Verdict::Busy) at once. Its size bounds the wait: 16 checks at cost 10 (about 0.1 s
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

/// One bcrypt check waiting for a worker.
pub(super) struct Job {
    /// What is checked; `key.hash` is the hash the password is verified against.
    pub(super) key: CacheKey,
    /// The password itself (the key holds only its digest).
    pub(super) password: Vec<u8>,
    /// The user is configured; an unknown user's verdict is false whatever bcrypt says.
    pub(super) known: bool,
    /// Where the verdict goes, to every request waiting for these credentials; it has no
    /// receivers once they have all been dropped (their clients went away).
    pub(super) answer: Answer,
}

/// The verdict of one check, `None` until a worker has it.
pub(super) type Answer = Arc<watch::Sender<Option<bool>>>;

/// What the request path and the workers share.
pub(super) struct State {
    /// Verdicts so far, at most [`CACHE_CAPACITY`]; workers insert, requests read.
    pub(super) cache: Mutex<HashMap<CacheKey, bool>>,
    /// Checks queued or running, so a request for the same credentials waits for that check
    /// rather than queueing another. Requests insert; the worker removes the entry when it
    /// answers or skips the check.
    pub(super) pending: Mutex<HashMap<CacheKey, Answer>>,
    /// Checks waiting for a worker, at most [`CHECKS_QUEUED`] with a client still waiting.
    pub(super) waiting: Mutex<Waiting>,
    /// Signalled when a check is queued or the authenticator is dropped.
    pub(super) ready: Condvar,
    /// bcrypt checks run so far (tests read it).
    pub(super) checks: AtomicU64,
    /// Checks skipped because their client had gone before a worker took them.
    pub(super) cancelled: AtomicU64,
}

impl State {
    pub(super) fn cached(&self, key: &CacheKey) -> Option<bool> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    pub(super) fn remember(&self, key: CacheKey, verdict: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(key, verdict);
    }

    pub(super) fn pending(&self) -> MutexGuard<'_, HashMap<CacheKey, Answer>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` unless [`CHECKS_QUEUED`] checks with a client still waiting are queued;
    /// checks whose clients have all gone are dropped from the queue to make room. Called
    /// with `pending` locked, so nobody joins a check as it is dropped.
    pub(super) fn enqueue(
        &self,
        job: Job,
        pending: &mut HashMap<CacheKey, Answer>,
    ) -> Result<(), Job> {
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

/// The queue of checks, and whether the workers should stop.
pub(super) struct Waiting {
    /// Oldest first.
    pub(super) jobs: VecDeque<Job>,
    /// Set when the authenticator is dropped; workers then stop.
    pub(super) closed: bool,
}

/// Why the authenticator could not start.
#[derive(Debug)]
pub struct StartError(std::io::Error);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "starting the bcrypt threads for basic_auth_users: {}", self.0)
    }
}

impl std::error::Error for StartError {}

/// Starts worker number `i`, which runs the checks queued in `state`.
pub(super) fn start_worker(i: usize, state: &Arc<State>) -> Result<(), StartError> {
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
