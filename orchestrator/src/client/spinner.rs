//! A one-line spinner on stderr with a status and the time elapsed, drawn only when stderr
//! is a terminal; it erases itself before anything else is written to the terminal.

use std::io::{IsTerminal, Write};
use std::time::Instant;

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

#[derive(Debug)]
pub struct Spinner {
    on: bool,
    started: Instant,
    frame: usize,
    drawn: bool,
    status: String,
}

impl Spinner {
    pub fn new(status: &str) -> Self {
        Self {
            on: std::io::stderr().is_terminal(),
            started: Instant::now(),
            frame: 0,
            drawn: false,
            status: status.to_string(),
        }
    }

    /// A spinner that never draws (`--json`, or output that must stay clean).
    pub fn off() -> Self {
        let mut s = Self::new("");
        s.on = false;
        s
    }

    pub fn set_status(&mut self, status: &str) {
        self.status = status.to_string();
    }

    /// Draws the next frame.
    pub fn tick(&mut self) {
        if !self.on {
            return;
        }
        self.frame = (self.frame + 1) % FRAMES.len();
        let secs = self.started.elapsed().as_secs() as i64;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{} {} {}",
            FRAMES[self.frame],
            self.status,
            super::render::span(secs)
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases the line it drew, if any.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.clear();
    }
}
