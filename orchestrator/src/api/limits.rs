//! 414, 431 and a declared body over its route's limit (413), before anything else looks
//! at a request.

use super::ApiError;

/// Longest request URI accepted (hyper's own limit, 64 KiB, answers without a body).
const MAX_URI_BYTES: usize = 16 * 1024;
/// Most header bytes accepted (hyper's own buffer limit applies only while a head is
/// still incomplete, so it does not always hold).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The body limits of the routes (`--body-limit`; the Alertmanager webhook's own).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub alertmanager: usize,
}

/// 414, 431 and 413 with the JSON error body, before anything else looks at the request:
/// a body whose declared length is over the limit is refused at once, not read
/// (or waited for) first.
pub async fn request_limits(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::CONTENT_LENGTH;
    use axum::response::IntoResponse;
    let uri = req.uri().to_string().len();
    if uri > MAX_URI_BYTES {
        return closing(
            ApiError::new(
                axum::http::StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!("the request URI is {uri} bytes; at most {MAX_URI_BYTES} are accepted"),
            )
            .into_response(),
        );
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return closing(ApiError::new(
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request headers are {headers} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
        )
        .into_response());
    }
    let limit = if req.uri().path() == "/api/webhooks/alertmanager" {
        limits.alertmanager
    } else {
        limits.default
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(
            ApiError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the request body is over the {limit} byte limit"),
            )
            .into_response(),
        );
    }
    next.run(req).await
}

/// `answer` with `Connection: close`: its request's body was not read, so the connection
/// ends with it. Without the header a client pools the connection and its next request
/// on it fails (a broken pipe) when the server closes it.
fn closing(mut answer: axum::response::Response) -> axum::response::Response {
    answer.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    answer
}
