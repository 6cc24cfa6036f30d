//! Secret values on the worker: a type that never prints, and masking of runbook output.
//!
//! Output is masked as it streams, per stream (stdout and stderr each through their own
//! [`Masker`]) and before the streams are merged: a secret written in several writes, or
//! split by the pipe's chunking, or interleaved with writes to the other stream, is still
//! seen whole on its own stream. A masker holds back only the bytes at the end of what it
//! saw that could still be the start of a secret.

use std::sync::Arc;

/// A secret that never prints.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What masked text shows instead of a secret.
pub const MASK: &[u8] = b"***";

/// Values shorter than this are not masked: they would mangle the output and protect
/// nothing.
pub const MIN_MASKED_LEN: usize = 4;

/// The secret values one run must not show, longest first (so one secret that contains
/// another is masked whole).
#[derive(Debug, Clone, Default)]
pub struct MaskSet(Arc<[Vec<u8>]>);

impl MaskSet {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut v: Vec<Vec<u8>> = values
            .into_iter()
            .filter(|s| s.len() >= MIN_MASKED_LEN)
            .map(|s| s.as_bytes().to_vec())
            .collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v.dedup();
        Self(v.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A streaming masker for one output stream.
    pub fn masker(&self) -> Masker {
        Masker {
            set: self.clone(),
            pending: Vec::new(),
        }
    }

    /// `text` with every secret replaced (for text that is whole, not a stream).
    pub fn mask_all(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        self.scan(text, text.len(), &mut out);
        out
    }

    /// Masks `buf` from the start, leftmost-longest, until position `upto` (a match may run
    /// past it); appends to `out` and returns where it stopped.
    fn scan(&self, buf: &[u8], upto: usize, out: &mut Vec<u8>) -> usize {
        let mut i = 0;
        while i < upto {
            // Longest first: the first that matches here is the longest.
            match self.0.iter().find(|s| buf[i..].starts_with(s)) {
                Some(s) => {
                    out.extend_from_slice(MASK);
                    i += s.len();
                }
                None => {
                    out.push(buf[i]);
                    i += 1;
                }
            }
        }
        i
    }
}

/// Masks one stream across chunk boundaries.
#[derive(Debug)]
pub struct Masker {
    set: MaskSet,
    /// Seen but not yet released: the end of the stream that may begin a secret.
    pending: Vec<u8>,
}

impl Masker {
    /// Feeds `chunk`; appends to `out` what can be shown now. What is held back is kept
    /// raw (unmasked), so a longer secret that contains a shorter one is still seen whole
    /// when its end arrives.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        if self.set.is_empty() {
            out.extend_from_slice(chunk);
            return;
        }
        self.pending.extend_from_slice(chunk);
        let hold = self.partial_secret_at_end(&self.pending);
        let stop = self.pending.len() - hold;
        let done = self.set.scan(&self.pending, stop, out);
        self.pending.drain(..done.min(self.pending.len()));
    }

    /// The end of the stream: releases what was held back.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let rest = std::mem::take(&mut self.pending);
        out.extend_from_slice(&self.set.mask_all(&rest));
    }

    /// How many bytes at the end of `text` could still become a secret: from the first
    /// position whose rest is a proper prefix of some secret (no match that starts
    /// earlier can be incomplete).
    fn partial_secret_at_end(&self, text: &[u8]) -> usize {
        let longest = self.set.0.first().map_or(0, Vec::len);
        let from = text.len().saturating_sub(longest.saturating_sub(1));
        (from..text.len())
            .find(|&start| {
                let tail = &text[start..];
                self.set
                    .0
                    .iter()
                    .any(|s| s.len() > tail.len() && s.starts_with(tail))
            })
            .map_or(0, |start| text.len() - start)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stream(set: &MaskSet, chunks: &[&[u8]]) -> String {
        let mut m = set.masker();
        let mut out = Vec::new();
        for c in chunks {
            m.push(c, &mut out);
        }
        m.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn secrets_split_across_chunks_are_masked() {
        let set = MaskSet::new(["hunter22", "abc"]);
        assert_eq!(stream(&set, &[b"pw=hun", b"ter", b"22!"]), "pw=***!");
        assert_eq!(
            stream(&set, &[b"h", b"u", b"n", b"t", b"e", b"r", b"2", b"2"]),
            "***"
        );
        // Too short to mask.
        assert_eq!(stream(&set, &[b"abc"]), "abc");
        // A prefix that never completes is released at the end, unchanged.
        assert_eq!(stream(&set, &[b"hunter2"]), "hunter2");
    }

    #[test]
    fn only_possible_prefixes_are_held_back() {
        let set = MaskSet::new(["s3cr3t-value"]);
        let mut m = set.masker();
        let mut out = Vec::new();
        m.push(b"line one\nand s3c", &mut out);
        assert_eq!(out, b"line one\nand ");
        m.push(b"ond", &mut out);
        assert_eq!(out, b"line one\nand s3cond");
    }

    #[test]
    fn a_secret_containing_a_shorter_one_is_masked_whole_across_chunks() {
        let set = MaskSet::new(["pass", "password1"]);
        assert_eq!(stream(&set, &[b"pass", b"word1"]), "***");
        assert_eq!(stream(&set, &[b"x pass", b"word1 y"]), "x *** y");
        assert_eq!(stream(&set, &[b"pass", b"port"]), "***port");
        let set = MaskSet::new(["inner", "xxinneryy"]);
        assert_eq!(stream(&set, &[b"xxinner", b"yy"]), "***");
    }

    #[test]
    fn the_longest_secret_wins() {
        let set = MaskSet::new(["pass", "password1"]);
        assert_eq!(stream(&set, &[b"x password1 pass"]), "x *** ***");
    }

    #[test]
    fn no_secrets_passes_through() {
        assert_eq!(stream(&MaskSet::default(), &[b"a", b"b"]), "ab");
    }
}
