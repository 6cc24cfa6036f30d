//! The Tables client's checks that need no Azurite: entity encoding, keys, quoting.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn entity_bodies_are_ascii_and_mean_the_same() {
    let mut e = Entity::new();
    e.insert("t".into(), Value::String("é€𝄞x\n\"q\"".into()));
    let wire = ascii_json(&e);
    assert!(wire.is_ascii(), "{wire}");
    assert!(wire.contains("\\ud834\\udd1e"), "a surrogate pair: {wire}");
    let back: Entity = serde_json::from_str(&wire).unwrap();
    assert_eq!(back, e);
}

#[test]
fn keys_and_literals_are_escaped() {
    assert_eq!(quote("O'Brien"), "'O''Brien'");
    assert_eq!(safe_key("team a/b#?"), "team~20a~2Fb~23~3F");
    assert_eq!(safe_key("ok-1_2.x"), "ok-1_2.x");
}
