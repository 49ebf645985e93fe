//! uid <-> user name through the password database (the host's `getpwuid_r` and
//! `getpwnam_r`), with a cache so that a scrape looks up each uid once in the life of the
//! process, not once per scrape.

use std::collections::HashMap;
use std::sync::Mutex;

pub use crate::host::passwd::{lookup_name, lookup_uid};

/// A cache of uid -> name lookups. A uid without an entry is cached too (as `None`): an
/// unknown uid does not cost a lookup per scrape.
#[derive(Debug, Default)]
pub struct UserNames {
    cache: Mutex<HashMap<u32, Option<String>>>,
}

impl UserNames {
    /// An empty cache.
    pub fn new() -> UserNames {
        UserNames::default()
    }

    /// The name of `uid`, or `None` when the password database has none.
    pub fn name(&self, uid: u32) -> Option<String> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.entry(uid).or_insert_with(|| lookup_uid(uid)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_uids_are_cached_as_unknown() {
        let names = UserNames::new();
        assert_eq!(names.name(4_000_000_000), None);
        assert_eq!(names.cache.lock().unwrap().get(&4_000_000_000), Some(&None));
    }
}
