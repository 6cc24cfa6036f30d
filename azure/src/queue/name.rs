//! Queue names: what Azure accepts, from any pool name.

use sha2::{Digest, Sha256};

/// A valid queue name for a pool (3-63 of `a-z0-9-`, no double dash, leaving room for
/// `-poison`). Pool names that had to be changed get a short hash so two never collide.
pub fn queue_name(prefix: &str, pool: &str) -> String {
    let mut clean = String::new();
    for c in pool.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && clean.ends_with('-')) {
            clean.push(c);
        }
    }
    let clean = clean.trim_matches('-').to_string();
    let head = if prefix.is_empty() {
        "jobs".to_string()
    } else {
        prefix.to_ascii_lowercase()
    };
    let changed = clean != pool;
    let mut name = format!("{head}-{clean}");
    name.truncate(if changed { 47 } else { 56 });
    let mut name = name.trim_end_matches('-').to_string();
    if changed {
        let h = cloudo_core::auth::hex(&Sha256::digest(pool.as_bytes())[..4]);
        name = format!("{name}-{h}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_valid_and_distinct() {
        assert_eq!(queue_name("cloudo", "default"), "cloudo-default");
        let a = queue_name("cloudo", "Team_A");
        let b = queue_name("cloudo", "team-a");
        assert_ne!(a, b);
        for n in [
            a,
            b,
            queue_name("p", &"x".repeat(200)),
            queue_name("", "--"),
        ] {
            assert!(n.len() >= 3 && n.len() + "-poison".len() <= 63, "{n}");
            assert!(!n.contains("--") && !n.ends_with('-'), "{n}");
            assert!(
                n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
        }
    }
}
