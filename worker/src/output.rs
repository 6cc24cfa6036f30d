//! Bounded output capture: the head and the tail of what a runbook printed.
//!
//! A runbook that floods its output must not exhaust memory or the store, but the end of
//! the output is usually where the error is (ClouDO kept only the head, §9.3-26). So we
//! keep the first half of the cap and the last half, with a marker between them saying how
//! much was dropped.

use std::sync::{Arc, Mutex};

use cloudo_core::text::floor_char_boundary;

use crate::secrets::{MaskSet, Masker};

/// Most bytes of log one heartbeat carries.
pub const LOG_PIECE_MAX: usize = 256 * 1024;

/// The output of a run as it goes to the orchestrator's log while it runs: the sandbox
/// writes (masked) bytes, the heartbeat sends what was not acknowledged yet, from the offset
/// it starts at. The log is text: bytes that are not UTF-8 are replaced as they arrive
/// (a character split across writes waits for its last bytes), so offsets count the bytes
/// of the text as stored. At most `cap` bytes are kept.
#[derive(Debug, Clone)]
pub struct LiveOutput(Arc<Mutex<LiveLog>>);

#[derive(Debug, Default)]
struct LiveLog {
    cap: u64,
    /// Offset of the first pending byte: what the orchestrator has.
    acked: u64,
    pending: String,
    /// The start of a character whose last bytes did not arrive yet.
    carry: Vec<u8>,
}

impl LiveOutput {
    /// A log of at most `cap` bytes in all, whose output starts at `offset` (what earlier
    /// attempts of the execution logged).
    pub fn new(cap: usize, offset: u64) -> Self {
        Self(Arc::new(Mutex::new(LiveLog {
            cap: cap as u64,
            acked: offset,
            ..LiveLog::default()
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut LiveLog) -> T) -> T {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    pub fn push(&self, chunk: &[u8]) {
        self.with(|l| {
            l.carry.extend_from_slice(chunk);
            let whole = cloudo_core::text::utf8_prefix(&l.carry).len();
            let text = String::from_utf8_lossy(&l.carry[..whole]).into_owned();
            l.carry.drain(..whole);
            l.append(&text);
        });
    }

    /// The run ended: what is left of a split character is shown replaced.
    pub fn close(&self) {
        self.with(|l| {
            let text = String::from_utf8_lossy(&l.carry).into_owned();
            l.carry.clear();
            l.append(&text);
        });
    }

    /// Up to `max` bytes not acknowledged yet, from their offset; `None` when all was.
    pub fn piece(&self, max: usize) -> Option<(u64, String)> {
        self.with(|l| {
            if l.pending.is_empty() {
                return None;
            }
            let end = floor_char_boundary(&l.pending, max.max(4));
            Some((l.acked, l.pending[..end].to_string()))
        })
    }

    /// Bytes not acknowledged yet.
    pub fn pending(&self) -> usize {
        self.with(|l| l.pending.len())
    }

    /// The orchestrator's log is `size` bytes long: what is before is not sent again.
    pub fn ack(&self, size: u64) {
        self.with(|l| {
            if size <= l.acked {
                return;
            }
            let n = floor_char_boundary(
                &l.pending,
                usize::try_from(size - l.acked).unwrap_or(usize::MAX),
            );
            l.pending.drain(..n);
            l.acked += n as u64;
        })
    }
}

impl LiveLog {
    fn append(&mut self, text: &str) {
        let room = self
            .cap
            .saturating_sub(self.acked + self.pending.len() as u64);
        let n = floor_char_boundary(text, usize::try_from(room).unwrap_or(usize::MAX));
        self.pending.push_str(&text[..n]);
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
        if let Some(l) = &self.live {
            l.close();
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
    fn the_live_log_sends_what_was_not_acknowledged_as_text() {
        let live = LiveOutput::new(12, 0);
        let euro = "€".as_bytes();
        live.push(b"ab");
        live.push(&euro[..2]);
        assert_eq!(
            live.piece(100),
            Some((0, "ab".to_string())),
            "split char waits"
        );
        live.push(&euro[2..]);
        live.push(b"\xffc");
        assert_eq!(live.piece(100), Some((0, "ab€\u{fffd}c".to_string())));
        live.ack(2);
        assert_eq!(live.piece(100), Some((2, "€\u{fffd}c".to_string())));
        assert_eq!(live.piece(4), Some((2, "€".to_string())), "cut at a char");
        live.ack(1); // an older size changes nothing
        live.ack(2 + 3 + 3 + 1);
        assert_eq!(live.piece(100), None);
        live.push(b"0123456789");
        assert_eq!(
            live.piece(100),
            Some((9, "012".to_string())),
            "at most the cap in all"
        );
        live.push(&euro[..1]);
        live.close();
        assert_eq!(live.piece(100), Some((9, "012".to_string())));
    }

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
