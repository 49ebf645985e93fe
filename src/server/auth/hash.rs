//! The bcrypt hashes of `basic_auth_users`: each checked at start-up, and all of one cost so
//! an answer's time does not tell which users exist.

use std::collections::BTreeMap;

use bcrypt::HashParts;

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

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::fixtures::{ALICE, CAROL, DAVE, users};

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
}
