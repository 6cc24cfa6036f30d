//! A Server-Sent Events reader for the tests: events as they arrive, with the time each
//! was read.

use std::time::{Duration, Instant};

/// One event.
#[derive(Debug, Clone)]
pub struct Ev {
    pub event: String,
    pub id: Option<String>,
    pub data: serde_json::Value,
    pub at: Instant,
}

#[derive(Debug)]
pub struct Reader {
    res: reqwest::Response,
    buf: Vec<u8>,
}

impl Reader {
    pub fn new(res: reqwest::Response) -> Self {
        assert_eq!(res.status(), 200);
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            res,
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 2).collect();
                let block = String::from_utf8(raw).unwrap();
                let mut ev = Ev {
                    event: "message".into(),
                    id: None,
                    data: serde_json::Value::Null,
                    at: Instant::now(),
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment or a bare retry
                }
                ev.data = serde_json::from_str(&data).unwrap();
                return Some(ev);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(60), self.res.chunk())
                .await
                .expect("no event for 60 s")
                .unwrap()?;
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Every event until the stream ends.
    pub async fn rest(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next().await {
            out.push(e);
        }
        out
    }
}

/// The output text of `events`, in order, checking each starts where the last ended.
pub fn text(events: &[Ev], mut at: u64) -> String {
    let mut s = String::new();
    for e in events.iter().filter(|e| e.event == "output") {
        assert_eq!(
            e.data["offset"].as_u64(),
            Some(at),
            "a gap or a repeat: {e:?}"
        );
        at = e.data["next"].as_u64().unwrap();
        assert_eq!(e.id.as_deref(), Some(at.to_string().as_str()));
        s.push_str(e.data["text"].as_str().unwrap());
    }
    s
}
