//! Defensive reads from `serde_json::Value`: a missing or null field is `None`, never an
//! error; numbers and booleans read as text where text is expected.

use serde_json::Value;

/// `v[path[0]][path[1]]...`, `None` if any step is missing or null.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = cur.as_object()?.get(*p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// A scalar as text: strings as they are, numbers and booleans printed; else `None`.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn text_at(v: &Value, path: &[&str]) -> String {
    at(v, path).and_then(text).unwrap_or_default()
}

/// Strings of an array (non-strings skipped); a lone string counts as a one-item list.
pub fn strings_at(v: &Value, path: &[&str]) -> Vec<String> {
    match at(v, path) {
        Some(Value::Array(a)) => a.iter().filter_map(text).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// An object of scalars as (name, value) pairs; nested values are kept as compact JSON.
pub fn pairs_of(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), text(v).unwrap_or_else(|| v.to_string())))
            .collect(),
        _ => Vec::new(),
    }
}

/// `[{"name": .., "value": ..}, ...]` as pairs.
pub fn name_values(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|d| Some((text(at(d, &["name"])?)?, at(d, &["value"]).and_then(text)?)))
            .collect(),
        _ => Vec::new(),
    }
}
