//! Renders the resilience suite's rows (`tests/chaos`) as the table `make chaos` prints and
//! keeps in docs/reliability.md.
//!
//! `cargo run --example chaos_report -- <rows dir> [--write <markdown file>]`: prints the
//! table; with `--write`, replaces what is between `<!-- chaos:begin -->` and
//! `<!-- chaos:end -->` in the file with it, dated and with the commit it was run at.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use serde_json::Value;

/// Scenarios in the order the table lists them; others follow by name.
const ORDER: &[&str] = &[
    "kill9-embedded",
    "kill9-worker",
    "kill9-orchestrator",
    "azurite-restart",
    "disk-full-embedded",
    "storm-one-alert",
    "storm-many-resources",
    "alertmanager-group-5000",
    "schemathesis-admin",
    "schemathesis-viewer",
    "http-abuse",
    "hostile-runbooks-bwrap",
    "hostile-runbooks-docker",
    "hostile-runbooks-process",
];

const COUNTS: &[&str] = &[
    "accepted",
    "found",
    "lost",
    "duplicated",
    "stuck",
    "leftovers",
    "secrets",
    "violations",
];

fn rank(name: &str) -> (usize, String) {
    let i = ORDER.iter().position(|o| *o == name).unwrap_or(ORDER.len());
    (i, name.to_string())
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn table(rows: &[Value]) -> String {
    let mut out = String::from("| scenario | load | faults injected |");
    for c in COUNTS {
        out += &format!(" {c} |");
    }
    out += "\n|---|---|---|";
    out += &"---:|".repeat(COUNTS.len());
    out += "\n";
    for r in rows {
        let text = |k: &str| cell(r[k].as_str().unwrap_or_default());
        out += &format!(
            "| {} | {} | {} |",
            text("scenario"),
            text("load"),
            text("faults")
        );
        for c in COUNTS {
            out += &format!(" {} |", r[*c].as_u64().unwrap_or_default());
        }
        out += "\n";
    }
    out += "\nNotes:\n\n";
    for r in rows {
        out += &format!(
            "- **{}**: {}\n",
            r["scenario"].as_str().unwrap_or_default(),
            cell(r["notes"].as_str().unwrap_or_default())
        );
    }
    out
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: chaos_report <rows dir> [--write <markdown file>]");
        return ExitCode::FAILURE;
    };
    let mut rows: Vec<Value> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| serde_json::from_str(&t).ok())
                .collect()
        })
        .unwrap_or_default();
    if rows.is_empty() {
        eprintln!("chaos_report: no rows in {}", dir.display());
        return ExitCode::FAILURE;
    }
    rows.sort_by_key(|r| rank(r["scenario"].as_str().unwrap_or_default()));
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " (with uncommitted changes)"
    };
    let mode = std::env::var("CHAOS").unwrap_or_else(|_| "short".into());
    let heading = format!(
        "Run of {} at commit {}{dirty}, `CHAOS={mode}`, on a 2-vCPU Debian 12 VM.\n\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        git(&["rev-parse", "--short", "HEAD"]),
    );
    let body = heading + &table(&rows);
    println!("{body}");
    let bad = rows
        .iter()
        .filter(|r| {
            COUNTS[2..]
                .iter()
                .any(|c| r[*c].as_u64().unwrap_or_default() > 0)
        })
        .count();
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let Some(file) = args.get(i + 1) else {
            eprintln!("--write needs a file");
            return ExitCode::FAILURE;
        };
        let (begin, end) = ("<!-- chaos:begin -->", "<!-- chaos:end -->");
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let (Some(a), Some(b)) = (text.find(begin), text.find(end)) else {
            eprintln!("{file} has no {begin} ... {end} section");
            return ExitCode::FAILURE;
        };
        let new = format!("{}{begin}\n{body}{}", &text[..a], &text[b..]);
        if let Err(e) = std::fs::write(file, new) {
            eprintln!("cannot write {file}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("chaos_report: wrote the table into {file}");
    }
    if bad > 0 {
        eprintln!("chaos_report: {bad} scenarios broke a promise");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
