//! uid <-> user name through the password database (`getpwuid_r`, `getpwnam_r`), with a
//! cache so that a scrape looks up each uid once in the life of the process, not once per
//! scrape.

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::sync::Mutex;

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

/// `getpwuid_r`: the login name of `uid`.
pub fn lookup_uid(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: passwd is plain data that getpwuid_r fills; zeroed is a valid initial value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer refers to a live local; buf.len() is the true size of buf,
        // which getpwuid_r uses for the strings that pwd then points into.
        let rc = unsafe {
            libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside buf.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// `getpwnam_r`: the uid of login `name`.
pub fn lookup_name(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: as in lookup_uid.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as in lookup_uid; cname is NUL-terminated.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(pwd.pw_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_uid_zero_both_ways() {
        assert_eq!(lookup_uid(0).as_deref(), Some("root"));
        assert_eq!(lookup_name("root"), Some(0));
        assert_eq!(lookup_name("no-such-user-here"), None);
    }

    #[test]
    fn unknown_uids_are_cached_as_unknown() {
        let names = UserNames::new();
        assert_eq!(names.name(4_000_000_000), None);
        assert_eq!(names.cache.lock().unwrap().get(&4_000_000_000), Some(&None));
    }
}
