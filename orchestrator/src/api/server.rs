//! The HTTP server loop, on hyper directly (axum's `serve` exposes none of these):
//! request headers must arrive within `header_timeout` (the connection of a client
//! trickling header bytes is closed), each client address holds at most `per_client` connections
//! (more are answered 429 and closed), and graceful shutdown waits for open requests.
//!
//! hyper answers requests it cannot parse (400), URIs over 64 KiB (414) and oversized
//! headers (431) itself, with an empty body; [`JsonErrors`]
//! gives those answers the API's JSON error body, so every 4xx has one.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

/// Bounds on connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub per_client: usize,
}

/// Open connections per client address.
#[derive(Debug, Default, Clone)]
struct Counts(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One counted connection; uncounted when dropped.
#[derive(Debug)]
struct Slot {
    counts: Counts,
    ip: IpAddr,
}

impl Counts {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.counts.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for open requests.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let counts = Counts::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, usually: give connections time to close.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(slot) = counts.take(peer.ip(), limits.per_client) else {
            tracing::warn!(client = %peer.ip(), limit = limits.per_client,
                "too many connections from one client; refused");
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = app.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            },
        );
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(
                TokioIo::new(JsonErrors::new(stream)),
                TowerToHyperService::new(svc),
            );
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection over the per-client limit with 429 and closes it.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":{"code":"too_many_connections","message":"too many open connections from this address; close some and retry"}}"#;
    let res = format!(
        "HTTP/1.1 429 Too Many Requests\r\nconnection: close\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(res.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The JSON body for one of hyper's own bodiless error answers, if `head` is one: a
/// complete 4xx head with `content-length: 0` (the API's own 4xx answers always have a
/// body). Returns the answer to send instead.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    if head.len() > 512
        || !(head.starts_with(b"HTTP/1.1 4") || head.starts_with(b"HTTP/1.0 4"))
        || !head.ends_with(b"\r\n\r\n")
    {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    if !text.contains("\r\ncontent-length: 0\r\n") {
        return None;
    }
    let status_line = text.split("\r\n").next()?;
    let (code, message) = match status_line.get(9..12)? {
        "400" => ("bad_request", "the request is not valid HTTP/1.1"),
        "408" => (
            "request_timeout",
            "the request headers did not arrive in time",
        ),
        "414" => ("uri_too_long", "the request URI is too long"),
        "431" => ("headers_too_large", "the request headers are too large"),
        _ => ("bad_request", "the request was refused"),
    };
    let body = format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#);
    let mut out = format!("{status_line}\r\ncontent-type: application/json\r\n");
    for line in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        if !line.starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(out.into_bytes())
}

/// A connection whose writes pass through, but for hyper's bodiless error answers, which
/// are replaced by [`with_json_body`].
#[derive(Debug)]
struct JsonErrors<S> {
    inner: S,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonErrors<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonErrors<S> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, done)) = &mut self.pending {
            if *done == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(replacement) = with_json_body(buf) {
            self.pending = Some((replacement, 0));
            // Written by this call or by the flush that follows; `buf` is taken either way.
            if let Poll::Ready(Err(e)) = self.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bare_errors_get_a_json_body() {
        let head = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 16:42:31 GMT\r\n\r\n";
        let out = String::from_utf8(with_json_body(head).expect("rewritten")).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(
            head.contains("connection: close") && head.contains("date: Wed"),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "uri_too_long");
    }

    #[test]
    fn other_answers_pass_unchanged() {
        for head in [
            &b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"a\": 1}",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\n",
            b"some body bytes",
        ] {
            assert_eq!(with_json_body(head), None);
        }
    }

    #[test]
    fn connections_are_counted_per_client() {
        let counts = Counts::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let a = counts.take(ip, 2).unwrap();
        let _b = counts.take(ip, 2).unwrap();
        assert!(counts.take(ip, 2).is_none());
        assert!(counts.take([10, 0, 0, 2].into(), 2).is_some());
        drop(a);
        assert!(counts.take(ip, 2).is_some());
    }
}
