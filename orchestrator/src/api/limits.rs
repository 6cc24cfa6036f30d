//! 414 and 431 before anything else looks at a request.

use super::ApiError;

/// Longest request URI accepted (hyper's own limit, 64 KiB, answers without a body).
const MAX_URI_BYTES: usize = 16 * 1024;
/// Most header bytes accepted (hyper's own buffer limit applies only while a head is
/// still incomplete, so it does not always hold).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// 414 and 431 with the JSON error body, before anything else looks at the request.
pub async fn request_limits(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return ApiError::new(
            axum::http::StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request URI is {uri} bytes; at most {MAX_URI_BYTES} are accepted"),
        )
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return ApiError::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {headers} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
        )
        .into_response();
    }
    next.run(req).await
}
