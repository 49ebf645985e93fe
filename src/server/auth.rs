//! HTTP basic auth against bcrypt hashes, as prometheus/exporter-toolkit does it, with its
//! lessons applied:
//! - a user we do not know still costs one bcrypt check (against the costliest configured
//!   hash), so response times do not tell which users exist;
//! - bcrypt runs on a blocking thread, one check at a time: a burst of logins queues instead
//!   of taking every core or stalling the async threads;
//! - verdicts are cached in a bounded map keyed by the tuple (user, hash, password digest).
//!   CVE-2022-46146 was a cache keyed by the concatenation `user + hash + password`, which a
//!   crafted user name could make equal to another user's key; a tuple cannot be forged that
//!   way, and an unknown user's verdict is false whatever bcrypt says.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bcrypt::HashParts;
use ring::digest;

/// Most cached verdicts; past it an arbitrary one is evicted, so the cache stays bounded
/// whatever an attacker sends.
pub const CACHE_CAPACITY: usize = 1024;

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
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::from("Basic ");
    for chunk in user_password.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = u32::from_be_bytes([0, b[0], b[1], b[2]]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 (RFC 4648 section 4) with mandatory padding, as Go's `StdEncoding`.
fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    if input.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let chunks = input.len() / 4;
    for (i, chunk) in input.chunks_exact(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        // Non-zero bits beyond the last byte mean a non-canonical encoding; Go refuses it.
        let keep = 3 - pad;
        if bytes[1 + keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..1 + keep]);
    }
    Some(out)
}

/// Why a `basic_auth_users` hash is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HashError {
    /// It does not parse as a bcrypt hash (the parser's reason).
    NotBcrypt(String),
    /// Its cost is outside what bcrypt allows.
    Cost(u32),
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HashError::NotBcrypt(why) => {
                write!(f, "not a bcrypt hash ({why}); make one with `htpasswd -nBC 10 USER`")
            }
            HashError::Cost(cost) => write!(f, "bcrypt cost {cost} is outside 4..31"),
        }
    }
}

impl std::error::Error for HashError {}

/// Checks that `hash` is a bcrypt hash: `$2a$`, `$2b$`, `$2x$` or `$2y$`, a cost from 4 to
/// 31, and 53 characters of salt and digest.
pub fn check_hash(hash: &str) -> Result<(), HashError> {
    let parts: HashParts =
        hash.parse().map_err(|e: bcrypt::BcryptError| HashError::NotBcrypt(e.to_string()))?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err(HashError::Cost(parts.get_cost()));
    }
    Ok(())
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
    /// What an unknown user's password is checked against: the costliest configured hash, so
    /// the check costs what a real one does. Its verdict is never used.
    decoy: Arc<str>,
    cache: Mutex<HashMap<CacheKey, bool>>,
    /// One bcrypt at a time; async, so waiting requests hold no thread.
    bcrypt_turn: tokio::sync::Mutex<()>,
    /// bcrypt checks run so far (tests and the debug log read it).
    checks: AtomicU64,
}

/// A fixed bcrypt hash (cost 10, of a random string nobody knows) for a config whose
/// `basic_auth_users` is empty.
const FALLBACK_DECOY: &str = "$2y$10$n.IgVHpm1.l9z34eBg1rpOjFhfoBCPizNlp2H2UPIWPyeA.2XHvCG";

impl Authenticator {
    /// An authenticator for `users` (name -> bcrypt hash, already checked by
    /// [`check_hash`]).
    pub fn new<'a>(users: impl IntoIterator<Item = (&'a String, &'a String)>) -> Authenticator {
        let users: HashMap<Vec<u8>, Arc<str>> = users
            .into_iter()
            .map(|(u, h)| (u.as_bytes().to_vec(), Arc::from(h.as_str())))
            .collect();
        let decoy = users
            .values()
            .max_by_key(|h| h.parse::<HashParts>().map(|p| p.get_cost()).unwrap_or(0))
            .cloned()
            .unwrap_or_else(|| Arc::from(FALLBACK_DECOY));
        Authenticator {
            users,
            decoy,
            cache: Mutex::new(HashMap::new()),
            bcrypt_turn: tokio::sync::Mutex::new(()),
            checks: AtomicU64::new(0),
        }
    }

    /// Whether the `Authorization` header value (if any) names a configured user with the
    /// right password. Malformed or missing credentials cost no bcrypt.
    pub async fn check(&self, header: Option<&[u8]>) -> bool {
        let Some(Ok(credentials)) = header.map(parse_basic) else {
            return false;
        };
        let (hash, known) = match self.users.get(&credentials.user) {
            Some(hash) => (hash.clone(), true),
            None => (self.decoy.clone(), false),
        };
        let mut password = [0u8; 32];
        password.copy_from_slice(digest::digest(&digest::SHA256, &credentials.password).as_ref());
        let key = CacheKey { user: credentials.user, hash: hash.clone(), password };
        if let Some(verdict) = self.cached(&key) {
            return verdict && known;
        }
        let _turn = self.bcrypt_turn.lock().await;
        // Whoever held the turn before may have just answered this very question.
        if let Some(verdict) = self.cached(&key) {
            return verdict && known;
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        let secret = credentials.password;
        let matched = match tokio::task::spawn_blocking(move || {
            bcrypt::verify(secret, &hash).unwrap_or(false)
        })
        .await
        {
            Ok(matched) => matched,
            // The blocking pool is shutting down: deny, and remember nothing.
            Err(_) => return false,
        };
        let verdict = matched && known;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(key, verdict);
        verdict
    }

    fn cached(&self, key: &CacheKey) -> Option<bool> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(key).copied()
    }

    /// bcrypt checks run so far.
    pub fn bcrypt_checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Verdicts cached now.
    #[cfg(test)]
    pub fn cached_verdicts(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // alice-password at cost 10, carol-password at cost 4 (tests/fixtures/web/users.good.yml).
    const ALICE: &str = "$2y$10$PaHX.GB50EaBEccDJXvS6uz4lMpXtVFq/gcF/76ju7RTp/nXe2GOy";
    const CAROL: &str = "$2y$04$cWeJSkPEThTyMQkRzs.e1ecZxSx8/jpwDY8JdlHp6ejbU/zGUdGC2";

    fn basic(user_pass: &str) -> Vec<u8> {
        encode_basic(user_pass.as_bytes()).into_bytes()
    }

    fn encode(input: &[u8]) -> String {
        encode_basic(input).split_off("Basic ".len())
    }

    fn users() -> Vec<(String, String)> {
        vec![("alice".into(), ALICE.into()), ("carol".into(), CAROL.into())]
    }

    fn auth() -> Authenticator {
        let users = users();
        Authenticator::new(users.iter().map(|(u, h)| (u, h)))
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

    #[tokio::test]
    async fn good_wrong_unknown_missing_and_malformed() {
        let a = auth();
        assert!(a.check(Some(&basic("alice:alice-password"))).await);
        assert!(a.check(Some(&basic("carol:carol-password"))).await);
        assert!(!a.check(Some(&basic("alice:carol-password"))).await);
        assert!(!a.check(Some(&basic("mallory:alice-password"))).await);
        assert!(!a.check(None).await);
        assert!(!a.check(Some(b"Basic !!!!")).await);
    }

    #[tokio::test]
    async fn unknown_users_cost_one_bcrypt_and_malformed_ones_none() {
        let a = auth();
        assert!(!a.check(Some(b"Basic !!!!")).await);
        assert!(!a.check(None).await);
        assert_eq!(a.bcrypt_checks(), 0);
        assert!(!a.check(Some(&basic("mallory:x"))).await);
        assert_eq!(a.bcrypt_checks(), 1);
        // Against the costliest configured hash, so it costs what alice's check costs.
        assert_eq!(&*a.decoy, ALICE);
    }

    #[tokio::test]
    async fn verdicts_are_cached_per_user_hash_and_password() {
        let a = auth();
        for _ in 0..3 {
            assert!(a.check(Some(&basic("alice:alice-password"))).await);
            assert!(!a.check(Some(&basic("alice:wrong"))).await);
        }
        assert_eq!(a.bcrypt_checks(), 2);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let a = auth();
        for i in 0..CACHE_CAPACITY + 50 {
            assert!(!a.check(Some(&basic(&format!("carol:wrong{i}")))).await);
        }
        assert_eq!(a.cached_verdicts(), CACHE_CAPACITY);
    }

    /// CVE-2022-46146: the toolkit's cache key was `user + hash + password`. Logging in as
    /// the unknown user `alice<alice's hash>` with the decoy's password cached "true" under
    /// the same string as `alice` with password `<decoy hash>fakepassword`.
    #[tokio::test]
    async fn cve_2022_46146_cache_poisoning_is_refused() {
        let a = auth();
        let decoy = a.decoy.to_string();
        assert!(!a.check(Some(&basic(&format!("alice{ALICE}:alice-password")))).await);
        assert!(!a.check(Some(&basic(&format!("alice:{decoy}alice-password")))).await);
        assert!(!a.check(Some(&basic(&format!("alice{decoy}:alice-password")))).await);
        assert!(a.check(Some(&basic("alice:alice-password"))).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_logins_are_serialised_and_answered() {
        let a = Arc::new(auth());
        let mut tasks = Vec::new();
        for i in 0..40 {
            let a = a.clone();
            tasks.push(tokio::spawn(async move {
                let (creds, expect) = match i % 4 {
                    0 => ("carol:carol-password".to_string(), true),
                    1 => (format!("carol:bad{i}"), false),
                    2 => (format!("nobody{i}:carol-password"), false),
                    _ => ("alice:alice-password".to_string(), true),
                };
                (a.check(Some(&basic(&creds))).await, expect)
            }));
        }
        for t in tasks {
            let (got, expect) = t.await.unwrap();
            assert_eq!(got, expect);
        }
        // Two good pairs, checked once each thanks to the re-check under the turn; every bad
        // one checked once.
        assert_eq!(a.bcrypt_checks(), 2 + 10 + 10);
    }
}
