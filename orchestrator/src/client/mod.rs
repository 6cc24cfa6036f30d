//! The `cloudo` command line as a client of a server: HTTP with one-line failures
//! (`http`), which server and key (`profile`), output for people (`render`, `spinner`) and
//! following an execution live (`follow`). The commands themselves are in
//! `commands/client/`.

pub mod follow;
pub mod http;
pub mod profile;
pub mod render;
pub mod spinner;

/// What the client commands exit with (docs/cli.md has the table).
pub mod exit {
    /// Done as asked; with `--follow`, the runbook succeeded.
    pub const OK: u8 = 0;
    /// A failed runbook without an exit code of its own (killed by a signal).
    pub const FAILED: u8 = 1;
    /// The command was refused: bad usage, bad input, or the server said no (4xx).
    pub const REFUSED: u8 = 2;
    /// The server could not be reached or failed (5xx): worth trying again.
    pub const UNREACHABLE: u8 = 3;
    /// The runbook ran past its time limit (as `timeout(1)`).
    pub const TIMEOUT: u8 = 124;
    /// It could not be run at all (runbook missing, sandbox failure).
    pub const ERROR: u8 = 125;
    /// Its worker vanished.
    pub const LOST: u8 = 126;
    /// An approver rejected it.
    pub const REJECTED: u8 = 129;
    /// Someone cancelled it.
    pub const STOPPED: u8 = 130;
    /// Nothing ran: skipped by a filter, or an alert that matched no runbook.
    pub const NOT_RUN: u8 = 131;

    /// The exit code of a finished execution.
    pub fn of(status: &str, exit_code: Option<i32>) -> u8 {
        match status {
            "succeeded" => OK,
            "failed" => match exit_code {
                Some(c) if (1..=255).contains(&c) => c as u8,
                _ => FAILED,
            },
            "timeout" => TIMEOUT,
            "error" => ERROR,
            "lost" => LOST,
            "rejected" => REJECTED,
            "stopped" => STOPPED,
            _ => NOT_RUN,
        }
    }
}

/// A client command that did not work out: one line saying what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub exit: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            exit: exit::REFUSED,
        }
    }

    pub fn code(mut self, exit: u8) -> Self {
        self.exit = exit;
        self
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::exit;

    #[test]
    fn each_outcome_has_its_own_exit_code() {
        assert_eq!(exit::of("succeeded", Some(0)), 0);
        assert_eq!(exit::of("failed", Some(7)), 7);
        assert_eq!(exit::of("failed", None), 1);
        assert_eq!(exit::of("failed", Some(-9)), 1);
        assert_eq!(exit::of("timeout", None), 124);
        assert_eq!(exit::of("error", None), 125);
        assert_eq!(exit::of("lost", None), 126);
        assert_eq!(exit::of("rejected", None), 129);
        assert_eq!(exit::of("stopped", Some(143)), 130);
        assert_eq!(exit::of("skipped", None), 131);
    }
}
