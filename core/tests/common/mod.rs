//! What the fuzz suites share: random JSON over the field names a parser looks at, and
//! replacing one node of a real document.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// JSON of up to `depth` levels whose objects use `keys` (so random documents reach deep
/// paths) and whose strings come from `strings`.
pub fn json(
    keys: &'static [&'static str],
    strings: impl Strategy<Value = String> + 'static,
    depth: u32,
) -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        strings.prop_map(Value::String),
    ];
    scalar.prop_recursive(depth, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(keys), inner), 0..8).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Replaces the node reached by following `path` (indices taken modulo the width).
pub fn mutate(v: &mut Value, path: &[usize], with: Value) {
    let Some((&i, rest)) = path.split_first() else {
        *v = with;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(i % m.len()).cloned().unwrap_or_default();
            if let Some(child) = m.get_mut(&key) {
                mutate(child, rest, with);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[i % n], rest, with);
        }
        _ => *v = with,
    }
}
