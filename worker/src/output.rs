//! Bounded output capture: the head and the tail of what a runbook printed.
//!
//! A runbook that floods its output must not exhaust memory or the store, but the end of
//! the output is usually where the error is (ClouDO kept only the head, §9.3-26). So we
//! keep the first half of the cap and the last half, with a marker between them saying how
//! much was dropped.

use std::sync::{Arc, Mutex};

use crate::secrets::{MaskSet, Masker};

/// Bytes of output a running execution shows (head and tail), refreshed with each
/// heartbeat; the whole capped output is stored when it ends.
pub const LIVE_CAP: usize = 48 * 1024;

/// The output of a run while it runs: the sandbox writes, the heartbeat reads snapshots.
#[derive(Debug, Clone)]
pub struct LiveOutput(Arc<Mutex<OutputCapture>>);

impl Default for LiveOutput {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(OutputCapture::new(LIVE_CAP))))
    }
}

impl LiveOutput {
    pub fn push(&self, chunk: &[u8]) {
        if let Ok(mut c) = self.0.lock() {
            c.push(chunk);
        }
    }

    /// The output so far and how many bytes were written in all.
    pub fn snapshot(&self) -> (String, u64) {
        match self.0.lock() {
            Ok(c) => (c.render().0, c.total()),
            Err(_) => (String::new(), 0),
        }
    }
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Where one run's output goes, from every sandbox alike: each stream masked on its own
/// (across chunks), then merged in the order read into the capped capture and the live view.
#[derive(Debug)]
pub struct RunOutput {
    capture: OutputCapture,
    live: Option<LiveOutput>,
    stdout: Masker,
    stderr: Masker,
    /// Bytes the runbook wrote, before masking.
    written: u64,
    scratch: Vec<u8>,
}

impl RunOutput {
    pub fn new(cap: usize, live: Option<LiveOutput>, secrets: &MaskSet) -> Self {
        Self {
            capture: OutputCapture::new(cap),
            live,
            stdout: secrets.masker(),
            stderr: secrets.masker(),
            written: 0,
            scratch: Vec::new(),
        }
    }

    pub fn push(&mut self, stream: Stream, chunk: &[u8]) {
        self.written += chunk.len() as u64;
        let masker = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        self.scratch.clear();
        masker.push(chunk, &mut self.scratch);
        self.emit();
    }

    fn emit(&mut self) {
        if self.scratch.is_empty() {
            return;
        }
        self.capture.push(&self.scratch);
        if let Some(l) = &self.live {
            l.push(&self.scratch);
        }
    }

    /// The captured text, whether it was truncated, and the bytes written in all.
    pub fn finish(mut self) -> (String, bool, u64) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.scratch.clear();
            match stream {
                Stream::Stdout => self.stdout.finish(&mut self.scratch),
                Stream::Stderr => self.stderr.finish(&mut self.scratch),
            }
            self.emit();
        }
        let (text, truncated) = self.capture.finish();
        (text, truncated, self.written)
    }
}

/// Accumulates output up to `cap` bytes (plus the marker).
#[derive(Debug)]
pub struct OutputCapture {
    cap: usize,
    head: Vec<u8>,
    tail: Vec<u8>,
    total: u64,
}

impl OutputCapture {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            head: Vec::new(),
            tail: Vec::new(),
            total: 0,
        }
    }

    fn head_cap(&self) -> usize {
        self.cap - self.cap / 2
    }

    fn tail_cap(&self) -> usize {
        self.cap / 2
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let room = self.head_cap().saturating_sub(self.head.len());
        if room > 0 {
            let n = room.min(chunk.len());
            self.head.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
        }
        if chunk.is_empty() || self.tail_cap() == 0 {
            return;
        }
        self.tail.extend_from_slice(chunk);
        // Trim in amortised steps: let the tail grow to twice its cap, then cut it back.
        if self.tail.len() > 2 * self.tail_cap() {
            let excess = self.tail.len() - self.tail_cap();
            self.tail.drain(..excess);
        }
    }

    /// Bytes seen in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn truncated(&self) -> bool {
        self.total > self.cap as u64
    }

    /// The captured text (invalid UTF-8 replaced) and whether anything was dropped.
    pub fn finish(self) -> (String, bool) {
        self.render()
    }

    /// What [`Self::finish`] would return, without consuming the capture.
    pub fn render(&self) -> (String, bool) {
        if !self.truncated() {
            let mut all = self.head.clone();
            all.extend_from_slice(&self.tail);
            return (String::from_utf8_lossy(&all).into_owned(), false);
        }
        let keep = self.tail_cap();
        let tail = &self.tail[self.tail.len().saturating_sub(keep)..];
        let dropped = self.total - (self.head.len() + tail.len()) as u64;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        out.push_str(&format!(
            "\n[cloudo: output truncated: {dropped} bytes omitted here; {} bytes in all, limit {} bytes]\n",
            self.total, self.cap
        ));
        out.push_str(&String::from_utf8_lossy(tail));
        (out, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = OutputCapture::new(100);
        c.push(b"hello ");
        c.push(b"world");
        assert_eq!(c.finish(), ("hello world".to_string(), false));
    }

    #[test]
    fn a_flood_keeps_head_and_tail_with_a_marker() {
        let mut c = OutputCapture::new(10);
        c.push(b"HEAD-");
        for _ in 0..1000 {
            c.push(b"xxxxxxxxxx");
        }
        c.push(b"-TAIL");
        let (out, truncated) = c.finish();
        assert!(truncated);
        assert!(
            out.starts_with("HEAD-\n[cloudo: output truncated: 10000 bytes omitted"),
            "{out}"
        );
        assert!(out.ends_with("]\n-TAIL"), "{out}");
    }
}
