//! Process logs: `tracing` to stderr, human-readable or JSON lines. `RUST_LOG` filters
//! (default `info`).
//!
//! Every line goes through a redaction writer that replaces the secrets the process was
//! given (bootstrap admin key, git token, runbook secrets) with `***`: nothing is supposed to
//! log them, and if something ever did, they would still not reach the log.

use std::io::{self, Write};
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::command::args::LogFormat;

/// Writes to stderr, masking known secrets line by line.
#[derive(Clone)]
struct Redacting {
    secrets: Arc<Vec<String>>,
}

struct RedactingWriter {
    secrets: Arc<Vec<String>>,
    buf: Vec<u8>,
}

impl Write for RedactingWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&self.buf).into_owned();
        self.buf.clear();
        redact(&mut text, &self.secrets);
        io::stderr().write_all(text.as_bytes())
    }
}

impl Drop for RedactingWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a> MakeWriter<'a> for Redacting {
    type Writer = RedactingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            secrets: self.secrets.clone(),
            buf: Vec::with_capacity(256),
        }
    }
}

/// Replaces each secret (at least 4 characters) in `text` with `***`.
pub fn redact(text: &mut String, secrets: &[String]) {
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        if text.contains(s.as_str()) {
            *text = text.replace(s.as_str(), "***");
        }
    }
}

pub fn init(format: LogFormat, secrets: Vec<String>) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = Redacting {
        secrets: Arc::new(secrets),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if let Err(e) = result {
        eprintln!("cloudo: logging already initialised: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_log_lines() {
        let mut line =
            "fetch failed for https://x-access-token:tok-123456@host: tok-123456".to_string();
        redact(&mut line, &["tok-123456".into(), "ab".into()]);
        assert_eq!(
            line,
            "fetch failed for https://x-access-token:***@host: ***"
        );
    }
}
