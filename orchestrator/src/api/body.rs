//! Request bodies: size (limited by the router), content type, and JSON with a readable
//! error.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde_json::Value;

use super::ApiError;

/// Is the declared content type acceptable for a JSON body? A missing one is accepted
/// (curl and many webhook senders omit it); anything but JSON is refused.
fn check_json_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "content-type must be application/json, got {essence:?}"
        )))
    }
}

/// An optional JSON body: `None` when empty. Returns the raw text (kept as received) and
/// the parsed value.
pub fn optional_json(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<(String, Value)>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    check_json_type(headers)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("request body is not UTF-8 text"))?;
    let value = serde_json::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    Ok(Some((text.to_string(), value)))
}

/// A JSON body that must be there.
pub fn required_json(
    headers: &HeaderMap,
    body: &Bytes,
    what: &str,
) -> Result<(String, Value), ApiError> {
    optional_json(headers, body)?
        .ok_or_else(|| ApiError::bad_request(format!("request body is empty; expected {what}")))
}
