//! One row of the resilience table per scenario: what was sent, what was found, and the
//! counts that must be zero. Each scenario saves its row (JSON) where `make chaos` renders
//! the table from (`examples/chaos_report.rs`), then fails if a count that must be zero is
//! not.

use std::path::PathBuf;

use serde::Serialize;

#[derive(Debug, Default, Serialize)]
pub struct Row {
    pub scenario: String,
    /// The load, in words: clients, rate, duration.
    pub load: String,
    /// The faults injected, in words.
    pub faults: String,
    /// Requests answered 2xx (each must have its execution).
    pub accepted: usize,
    /// Executions found for them afterwards.
    pub found: usize,
    /// Accepted with no execution.
    pub lost: usize,
    /// More than one execution for one accepted request (or one alert).
    pub duplicated: usize,
    /// Executions not terminal once the load stopped and the engine drained.
    pub stuck: usize,
    /// Processes, containers, cgroups, run folders or leased jobs left behind.
    pub leftovers: usize,
    /// Secrets found where they must not be (output, logs, command lines).
    pub secrets: usize,
    /// Other broken promises (a 503 without `Retry-After`, a 5xx, a limit exceeded...).
    pub violations: usize,
    /// What else the reader should know (timings, answers seen).
    pub notes: String,
}

/// Where rows go: `$CHAOS_ROWS`, else the test target's scratch folder.
pub fn rows_dir() -> PathBuf {
    std::env::var_os("CHAOS_ROWS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("chaos"))
}

/// `CHAOS=long` (`make chaos`) makes every scenario longer and harder; `make test` runs the
/// short version.
pub fn long() -> bool {
    std::env::var("CHAOS").is_ok_and(|v| v == "long")
}

/// `short` in `make test`, `long` under `make chaos`.
pub fn pick<T>(short: T, long_: T) -> T {
    if long() { long_ } else { short }
}

impl Row {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_string(),
            ..Self::default()
        }
    }

    /// Saves the row, prints it, and fails the test if a count that must be zero is not.
    pub fn finish(self) {
        let dir = rows_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let text = serde_json::to_string_pretty(&self).unwrap();
        std::fs::write(dir.join(format!("{}.json", self.scenario)), &text).unwrap();
        println!("{text}");
        let bad = [
            ("lost", self.lost),
            ("duplicated", self.duplicated),
            ("stuck", self.stuck),
            ("leftovers", self.leftovers),
            ("secrets", self.secrets),
            ("violations", self.violations),
        ];
        let bad: Vec<String> = bad
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(what, n)| format!("{what}: {n}"))
            .collect();
        assert!(
            bad.is_empty(),
            "{}: {} ({})",
            self.scenario,
            bad.join(", "),
            self.notes
        );
        assert!(self.accepted > 0, "{}: nothing was accepted", self.scenario);
    }
}

/// One scenario at a time: each one loads the machine's two cores on its own.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::LazyLock<tokio::sync::Mutex<()>> =
        std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));
    LOCK.lock().await
}
