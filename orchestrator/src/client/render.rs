//! Output for people: aligned tables, colours only on a terminal (never with `NO_COLOR`),
//! times relative to now.

use std::io::IsTerminal;

use chrono::{DateTime, Utc};

/// Whether to colour what goes to stdout.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    colour: bool,
}

impl Style {
    /// Colours on when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            colour: !no_color && std::io::stdout().is_terminal(),
        }
    }

    #[cfg(test)]
    pub fn plain() -> Self {
        Self { colour: false }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }

    /// A status word in its colour: green done, red failed, yellow waiting, blue running.
    pub fn status(&self, status: &str) -> String {
        let code = match status {
            "succeeded" => "32",
            "failed" | "error" | "timeout" | "lost" => "31;1",
            "pending" | "accepted" => "33",
            "running" => "34",
            _ => "2",
        };
        self.paint(code, status)
    }
}

/// Columns aligned on the widest cell; the last column is not padded.
#[derive(Debug)]
pub struct Table {
    head: Vec<String>,
    rows: Vec<Vec<(String, String)>>,
}

impl Table {
    pub fn new(head: &[&str]) -> Self {
        Self {
            head: head.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A row of cells: each is the plain text (whose width counts) and what to print.
    pub fn row(&mut self, cells: Vec<(String, String)>) {
        self.rows.push(cells);
    }

    /// A row of plain cells.
    pub fn plain_row(&mut self, cells: Vec<String>) {
        self.row(cells.into_iter().map(|c| (c.clone(), c)).collect());
    }

    pub fn render(&self, style: Style) -> String {
        let n = self.head.len();
        let mut width: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, (plain, _)) in row.iter().enumerate().take(n) {
                width[i] = width[i].max(plain.chars().count());
            }
        }
        let line = |cells: Vec<(String, String)>| {
            let mut out = String::new();
            for (i, (plain, shown)) in cells.into_iter().enumerate().take(n) {
                out.push_str(&shown);
                if i + 1 < n {
                    let pad = width[i] + 2 - plain.chars().count();
                    out.push_str(&" ".repeat(pad));
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let head = self
            .head
            .iter()
            .map(|h| (h.clone(), style.bold(h)))
            .collect();
        let mut out = line(head);
        for row in &self.rows {
            out.push_str(&line(row.clone()));
        }
        out
    }
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`; an absent time is `-`.
pub fn ago(t: Option<&str>, now: DateTime<Utc>) -> String {
    let Some(t) = t.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) else {
        return "-".to_string();
    };
    let secs = (now - t.with_timezone(&Utc)).num_seconds();
    if secs < 0 {
        return format!("in {}", span(-secs));
    }
    format!("{} ago", span(secs))
}

/// A length of time in its largest unit or two: `850ms` is `0s`, `75` is `1m15s`.
pub fn span(secs: i64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// From `start` to `end` (or to now while it runs).
pub fn duration(start: Option<&str>, end: Option<&str>, now: DateTime<Utc>) -> String {
    let parse = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    match start.and_then(parse) {
        None => "-".to_string(),
        Some(s) => {
            let e = end.and_then(parse).unwrap_or(now);
            let ms = (e - s).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms}ms")
            } else if ms < 10_000 {
                format!("{:.1}s", ms as f64 / 1000.0)
            } else {
                span(ms / 1000)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn tables_align_on_the_widest_cell() {
        let mut t = Table::new(&["ID", "STATUS"]);
        t.plain_row(vec!["a".into(), "succeeded".into()]);
        t.plain_row(vec!["longer-id".into(), "failed".into()]);
        assert_eq!(
            t.render(Style::plain()),
            "ID         STATUS\na          succeeded\nlonger-id  failed\n"
        );
    }

    #[test]
    fn colour_codes_do_not_count_in_widths() {
        let style = Style { colour: true };
        let mut t = Table::new(&["S", "X"]);
        t.row(vec![
            ("ok".into(), style.status("ok")),
            ("1".into(), "1".into()),
        ]);
        let out = t.render(style);
        assert!(out.contains("\x1b[2mok\x1b[0m  1"), "{out:?}");
    }

    #[test]
    fn times_are_relative() {
        let now = at("2026-12-04T10:00:00Z");
        assert_eq!(ago(Some("2026-12-04T09:59:48Z"), now), "12s ago");
        assert_eq!(ago(Some("2026-12-04T09:55:00Z"), now), "5m00s ago");
        assert_eq!(ago(Some("2026-12-02T08:00:00Z"), now), "2d02h ago");
        assert_eq!(ago(None, now), "-");
        assert_eq!(
            duration(
                Some("2026-12-04T09:59:58Z"),
                Some("2026-12-04T09:59:59.5Z"),
                now
            ),
            "1.5s"
        );
        assert_eq!(duration(Some("2026-12-04T09:58:00Z"), None, now), "2m00s");
    }
}
