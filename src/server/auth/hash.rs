//! The bcrypt hashes of `basic_auth_users`: each checked at start-up, and what their costs
//! let a timing attacker tell apart.

use std::collections::BTreeMap;

use bcrypt::HashParts;

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

/// What the costs of `basic_auth_users` give away to someone timing 401s.
///
/// A wrong password costs one check against the user's own hash, an unknown user one check
/// against a decoy of [`CostReport::decoy_cost`], the cost most users have. A user whose hash
/// costs something else answers a wrong password sooner or later than a user who does not
/// exist, which tells that the user exists. Files with mixed costs are accepted all the same
/// (the toolkit's own test file mixes 10, 12 and 18): padding every 401 to the costliest
/// hash would make each wrong login cost as much as that hash (25 s of a core at cost 18), a
/// lever for exhausting the CPU; so no wrong login costs more than that user's own hash, and
/// the users who stand out are named at start-up, with how to even them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostReport {
    /// The cost an unknown user's check costs: the most common cost among the users (the
    /// lowest of the most common, on a tie), `None` without users.
    pub decoy_cost: Option<u32>,
    /// Users whose hash has another cost, with that cost: a timing attacker can tell them
    /// from users who do not exist.
    pub distinguishable: Vec<(String, u32)>,
}

impl CostReport {
    /// The start-up warning naming the distinguishable users, if any.
    pub fn warning(&self) -> Option<String> {
        let cost = self.decoy_cost?;
        if self.distinguishable.is_empty() {
            return None;
        }
        let users: Vec<String> = self
            .distinguishable
            .iter()
            .map(|(user, cost)| format!("{user} (cost {cost})"))
            .collect();
        Some(format!(
            "basic_auth_users: bcrypt costs differ: a wrong password for {} is answered sooner or later than one for a user who does not exist (checked at cost {cost}, the cost most users have), so timing tells that they exist; rehash them at cost {cost} to even this out, e.g. `htpasswd -nBC {cost} USER`",
            users.join(", ")
        ))
    }
}

/// The costs of `users`' hashes (each checked as [`check_hash`] does), and who stands out.
pub fn cost_report(users: &BTreeMap<String, String>) -> Result<CostReport, HashError> {
    let mut costs = Vec::with_capacity(users.len());
    for (user, hash) in users {
        costs.push((user, cost(hash)?));
    }
    let decoy_cost = most_common(costs.iter().map(|(_, cost)| *cost));
    let distinguishable = costs
        .into_iter()
        .filter(|(_, cost)| Some(*cost) != decoy_cost)
        .map(|(user, cost)| (user.clone(), cost))
        .collect();
    Ok(CostReport { decoy_cost, distinguishable })
}

/// The most common of `costs`, the lowest of equally common ones; `None` for none.
pub(super) fn most_common(costs: impl Iterator<Item = u32>) -> Option<u32> {
    let mut tally = BTreeMap::<u32, usize>::new();
    for cost in costs {
        *tally.entry(cost).or_default() += 1;
    }
    // BTreeMap iterates by rising cost and max_by_key keeps the last maximum: reversed, the
    // lowest of equally common costs wins.
    tally.into_iter().rev().max_by_key(|(_, n)| *n).map(|(cost, _)| cost)
}

/// The cost of a configured hash, already checked; 0 if it does not parse.
pub(super) fn cost_of(hash: &str) -> u32 {
    cost(hash).unwrap_or(0)
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
    fn the_decoy_costs_what_most_users_cost_and_the_others_are_named() {
        let even = cost_report(&users(&[("carol", CAROL), ("dave", DAVE)])).unwrap();
        assert_eq!(even, CostReport { decoy_cost: Some(4), distinguishable: vec![] });
        assert_eq!(even.warning(), None);
        let none = cost_report(&users(&[])).unwrap();
        assert_eq!((none.decoy_cost, none.warning()), (None, None));
        let mixed = cost_report(&users(&[("alice", ALICE), ("carol", CAROL), ("dave", DAVE)]));
        let mixed = mixed.unwrap();
        assert_eq!(mixed.decoy_cost, Some(4));
        assert_eq!(mixed.distinguishable, [("alice".to_string(), 10)]);
        let line = mixed.warning().unwrap();
        assert!(line.contains("alice (cost 10)") && !line.contains("carol"), "{line}");
        assert!(line.contains("htpasswd -nBC 4") && !line.contains('\n'), "{line}");
        // A tie goes to the cheaper cost, so an unknown user never costs the dearer one.
        let tie = cost_report(&users(&[("alice", ALICE), ("carol", CAROL)])).unwrap();
        assert_eq!(tie.decoy_cost, Some(4));
        assert_eq!(tie.distinguishable, [("alice".to_string(), 10)]);
    }
}
