//! The web config's `rate_limit`: one token bucket shared by every request.

use std::sync::Mutex;
use std::time::Instant;

use super::web_config;

/// `rate_limit` of the web config: a token bucket shared by every request, as the toolkit's
/// (golang.org/x/time/rate): one token per `interval`, at most `burst` saved.
pub(super) struct TokenBucket {
    limit: web_config::RateLimit,
    /// Tokens available and when they were counted.
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub(super) fn new(limit: web_config::RateLimit) -> TokenBucket {
        TokenBucket { limit, state: Mutex::new((f64::from(limit.burst), Instant::now())) }
    }

    /// Takes a token if one is there.
    pub(super) fn allow(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let earned = now.duration_since(state.1).as_secs_f64() / self.limit.interval.as_secs_f64();
        state.0 = (state.0 + earned).min(f64::from(self.limit.burst));
        state.1 = now;
        if state.0 >= 1.0 {
            state.0 -= 1.0;
            true
        } else {
            false
        }
    }
}
