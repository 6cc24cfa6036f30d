//! Following an execution live through `GET /api/executions/{id}/stream` (Server-Sent
//! Events): output printed as it comes, status on the spinner, and after a dropped
//! connection (a server restart, a proxy) a reconnect with `Last-Event-ID` that goes on
//! where the output stopped, nothing missed and nothing twice.

use std::io::Write;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;

use super::http::{Call, Client};
use super::spinner::Spinner;
use super::{Failure, exit};

/// A stream silent this long (the server sends a comment every 15 s) is taken as dead.
const SILENCE: Duration = Duration::from_secs(45);
/// How long to keep trying to reconnect before giving up.
const RECONNECT_FOR: Duration = Duration::from_secs(300);
/// The spinner waits this long after output before it draws again.
const QUIET: Duration = Duration::from_millis(500);

/// One event of the stream.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Splits the stream's bytes into events (the SSE format: `field: value` lines, a blank
/// line ends an event, `:` starts a comment).
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    cur: SseEvent,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.cur.event.is_empty() || !self.cur.data.is_empty() {
                    out.push(std::mem::take(&mut self.cur));
                }
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.cur.event = value.to_string(),
                "id" => self.cur.id = Some(value.to_string()),
                "data" => {
                    if !self.cur.data.is_empty() {
                        self.cur.data.push('\n');
                    }
                    self.cur.data.push_str(value);
                }
                _ => {}
            }
        }
        out
    }
}

#[derive(Debug, Deserialize)]
struct Output {
    offset: u64,
    next: u64,
    text: String,
}

/// How the execution ended: its `end` event.
#[derive(Debug, Clone)]
pub struct Ended {
    pub status: String,
    pub exit_code: Option<i32>,
    pub data: Value,
}

impl Ended {
    pub fn exit(&self) -> u8 {
        exit::of(&self.status, self.exit_code)
    }
}

/// Prints the execution's output from `from` until it ends; with `json`, prints every
/// event as a JSON line instead.
pub async fn follow(client: &Client, id: &str, from: u64, json: bool) -> Result<Ended, Failure> {
    let mut offset = from;
    let mut spinner = if json {
        Spinner::off()
    } else {
        Spinner::new("connecting")
    };
    let mut last_output: Option<Instant> = None;
    let mut at_line_start = true;
    let mut failing_since: Option<Instant> = None;
    let mut attempt = 0u32;
    loop {
        let call = Call {
            headers: vec![
                ("accept", "text/event-stream".to_string()),
                ("last-event-id", offset.to_string()),
            ],
            ..Call::default()
        };
        let path = format!("/api/executions/{id}/stream");
        let res = match client.request(Method::GET, &path, call).send().await {
            Ok(res) if res.status().is_server_error() => Err(client.check(res).await.err()),
            Ok(res) => Ok(client.check(res).await?),
            Err(e) => Err(Some(client.unreachable(&e))),
        };
        let mut res = match res {
            Ok(res) => res,
            Err(why) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() > RECONNECT_FOR {
                    return Err(why
                        .unwrap_or_else(|| Failure::new("the stream failed"))
                        .code(exit::UNREACHABLE));
                }
                spinner.set_status("reconnecting");
                backoff(&mut spinner, &mut attempt).await;
                continue;
            }
        };
        failing_since = None;
        attempt = 0;
        let mut parser = SseParser::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        'read: loop {
            let chunk = tokio::select! {
                c = tokio::time::timeout(SILENCE, res.chunk()) => c,
                _ = tick.tick() => {
                    if at_line_start && last_output.is_none_or(|t| t.elapsed() > QUIET) {
                        spinner.tick();
                    }
                    continue 'read;
                }
            };
            let bytes = match chunk {
                Ok(Ok(Some(bytes))) => bytes,
                // Ended without `end`, broke, or went silent: reconnect.
                _ => break 'read,
            };
            for ev in parser.push(&bytes) {
                if json {
                    print_json(&ev);
                }
                match ev.event.as_str() {
                    "status" => {
                        let v: Value = serde_json::from_str(&ev.data).unwrap_or_default();
                        spinner.set_status(v["status"].as_str().unwrap_or("waiting"));
                    }
                    "output" => {
                        let Ok(out) = serde_json::from_str::<Output>(&ev.data) else {
                            continue;
                        };
                        let text = unseen(&out, offset);
                        offset = offset.max(out.next);
                        if !json && !text.is_empty() {
                            spinner.clear();
                            let mut stdout = std::io::stdout().lock();
                            let _ = stdout.write_all(text.as_bytes());
                            let _ = stdout.flush();
                            at_line_start = text.ends_with('\n');
                            last_output = Some(Instant::now());
                        }
                    }
                    "end" => {
                        spinner.clear();
                        if !json && !at_line_start {
                            println!();
                        }
                        let data: Value = serde_json::from_str(&ev.data).unwrap_or_default();
                        return Ok(Ended {
                            status: data["status"].as_str().unwrap_or("unknown").to_string(),
                            exit_code: data["exit_code"].as_i64().map(|c| c as i32),
                            data,
                        });
                    }
                    // `closing` (the server stops) and `error` (its store failed): reconnect.
                    "closing" | "error" => break 'read,
                    _ => {}
                }
            }
        }
        spinner.set_status("reconnecting");
        backoff(&mut spinner, &mut attempt).await;
    }
}

/// The part of an output event not printed yet (a resumed stream starts where asked, but a
/// server may resend a piece).
fn unseen(out: &Output, offset: u64) -> &str {
    if out.next <= offset {
        return "";
    }
    let skip = offset.saturating_sub(out.offset) as usize;
    out.text.get(skip..).unwrap_or(&out.text)
}

fn print_json(ev: &SseEvent) {
    let data: Value = serde_json::from_str(&ev.data).unwrap_or(Value::String(ev.data.clone()));
    let line = serde_json::json!({ "event": ev.event, "id": ev.id, "data": data });
    println!("{line}");
}

/// Waits before the next attempt: 250 ms, doubling to 5 s, the spinner turning meanwhile.
async fn backoff(spinner: &mut Spinner, attempt: &mut u32) {
    let wait = Duration::from_millis(250u64 << (*attempt).min(5)).min(Duration::from_secs(5));
    *attempt += 1;
    let until = Instant::now() + wait;
    while Instant::now() < until {
        spinner.tick();
        tokio::time::sleep(Duration::from_millis(100).min(until - Instant::now())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.push(b"retry: 1000\nevent: out").is_empty());
        let evs =
            p.push(b"put\nid: 5\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: end\r\ndata: x\r\n\r\n");
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: "output".into(),
                    id: Some("5".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: "end".into(),
                    id: None,
                    data: "x".into()
                }
            ]
        );
    }

    #[test]
    fn a_resent_piece_is_printed_once() {
        let out = Output {
            offset: 10,
            next: 16,
            text: "abcdef".into(),
        };
        assert_eq!(unseen(&out, 10), "abcdef");
        assert_eq!(unseen(&out, 13), "def");
        assert_eq!(unseen(&out, 16), "");
    }
}
