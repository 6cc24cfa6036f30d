//! The messages themselves: Opsgenie / JSM alert API bodies and Slack Block Kit posts.

use cloudo_core::notify::Responder;
use cloudo_core::{Execution, Schema};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Opsgenie's limit on `message`.
const MESSAGE_MAX: usize = 130;
/// Output lines and characters put in a description or a Slack post.
const TAIL_LINES: usize = 20;
const TAIL_CHARS: usize = 2000;

pub(super) fn env<'a>(e: &'a Execution, k: &str) -> &'a str {
    e.env.get(k).map(String::as_str).unwrap_or("")
}

/// The Opsgenie alias: the alert id when the run came from an alert (so Fired and Resolved
/// meet), else schema id + resource id; hashed when longer than Opsgenie's 512.
pub fn alias_of(e: &Execution) -> String {
    let a = match env(e, "ALERT_ID") {
        "" => match env(e, "RESOURCE_ID") {
            "" => format!("cloudo:{}", e.schema_id),
            r => format!("cloudo:{}:{r}", e.schema_id),
        },
        id => id.to_string(),
    };
    if a.len() <= 512 {
        a
    } else {
        let h: String = Sha256::digest(a.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("cloudo:{h}")
    }
}

/// At most `n` characters, with an ellipsis when cut.
pub(super) fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The last lines of the output, bounded.
pub fn tail(output: Option<&str>) -> String {
    let out = output.unwrap_or("");
    let lines: Vec<&str> = out.lines().collect();
    let from = lines.len().saturating_sub(TAIL_LINES);
    let text = lines[from..].join("\n");
    let n = text.chars().count();
    if n > TAIL_CHARS {
        text.chars().skip(n - TAIL_CHARS).collect()
    } else {
        text
    }
}

/// Sev0 -> P1 ... Sev4 -> P5; manual runs: the schema's priority, default P3.
pub fn priority(e: &Execution, schema: Option<&Schema>) -> String {
    match env(e, "ALERT_SEVERITY").parse::<cloudo_core::alert::Severity>() {
        Ok(s) => format!("P{}", s.level() + 1),
        Err(()) => schema
            .and_then(|s| s.priority.clone())
            .unwrap_or_else(|| "P3".into()),
    }
}

fn headline(e: &Execution) -> String {
    let on = match env(e, "RESOURCE_NAME") {
        "" => String::new(),
        r => format!(" on {r}"),
    };
    format!("[cloudo] {} {}{on}", e.name, e.status)
}

fn summary(e: &Execution, url: &str) -> String {
    let mut s = format!("Status: {}\n", e.status);
    if let Some(r) = &e.error {
        s.push_str(&format!("Reason: {r}\n"));
    }
    if let Some(c) = e.exit_code {
        s.push_str(&format!("Exit code: {c}\n"));
    }
    s.push_str(&format!("Execution: {url}\n"));
    let t = tail(e.output.as_deref());
    if !t.is_empty() {
        s.push_str(&format!("\nLast lines of output:\n{t}\n"));
    }
    s
}

/// `POST /v2/alerts`.
pub fn opsgenie_create(
    e: &Execution,
    schema: Option<&Schema>,
    alias: &str,
    responders: &[Responder],
    url: &str,
) -> (&'static str, String, Value) {
    let mut details = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            details.insert(k.to_string(), json!(v));
        }
    };
    put("exec_id", e.exec_id.as_str());
    put("schema", &e.schema_id);
    put("runbook", &e.runbook);
    put("runbook_commit", e.runbook_commit.as_deref().unwrap_or(""));
    put("status", e.status.as_str());
    put("resource", env(e, "RESOURCE_ID"));
    put("alert_rule", env(e, "ALERT_RULE"));
    put("severity", env(e, "ALERT_SEVERITY"));
    put("worker", e.worker_id.as_deref().unwrap_or(""));
    put("url", url);
    let mut tags = vec!["cloudo".to_string(), e.status.as_str().to_string()];
    if let Some(s) = schema {
        tags.extend(s.tags.iter().cloned());
    }
    let tags: Vec<String> = tags.iter().take(20).map(|t| cut(t, 50)).collect();
    let entity = match env(e, "RESOURCE_ID") {
        "" => e.schema_id.clone(),
        r => r.to_string(),
    };
    let body = json!({
        "message": cut(&headline(e), MESSAGE_MAX),
        "alias": alias,
        "description": cut(&summary(e, url), 15_000),
        "responders": responders,
        "tags": tags,
        "details": details,
        "entity": cut(&entity, 512),
        "source": "cloudo",
        "priority": priority(e, schema),
    });
    ("create", "/v2/alerts".into(), body)
}

fn alias_path(alias: &str, what: &str) -> String {
    let mut enc = String::new();
    for b in alias.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            enc.push(b as char);
        } else {
            enc.push_str(&format!("%{b:02X}"));
        }
    }
    format!("/v2/alerts/{enc}/{what}?identifierType=alias")
}

/// `POST /v2/alerts/{alias}/notes`: a repeat failure of an alert that is still open.
pub fn opsgenie_note(e: &Execution, alias: &str, url: &str) -> (&'static str, String, Value) {
    let body = json!({
        "note": cut(&format!("{}\n{}", headline(e), summary(e, url)), 25_000),
        "user": "cloudo",
        "source": "cloudo",
    });
    ("note", alias_path(alias, "notes"), body)
}

/// `POST /v2/alerts/{alias}/close`.
pub fn opsgenie_close(alias: &str, note: &str) -> (String, Value) {
    (
        alias_path(alias, "close"),
        json!({"note": note, "user": "cloudo", "source": "cloudo"}),
    )
}

/// `chat.postMessage` (or an incoming webhook, which ignores `channel`): Block Kit with a
/// plain-text fallback.
pub fn slack_post(e: &Execution, channel: &str, url: &str) -> Value {
    let emoji = match e.status.as_str() {
        "succeeded" => ":white_check_mark:",
        "failed" | "error" | "lost" | "timeout" => ":rotating_light:",
        _ => ":information_source:",
    };
    let duration = match (e.started_at, e.finished_at) {
        (Some(s), Some(f)) => format!("{:.1} s", (f - s).num_milliseconds() as f64 / 1000.0),
        _ => "-".into(),
    };
    let resource = match env(e, "RESOURCE_NAME") {
        "" => "-".to_string(),
        r => r.to_string(),
    };
    let text = format!(
        "{} {} — {url}",
        headline(e),
        e.error.as_deref().unwrap_or("")
    );
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": cut(&format!("{} {} {}{}", emoji_plain(e), e.name, e.status, if e.dry_run { " (dry run)" } else { "" }), 150)}}),
        json!({"type": "section", "fields": [
            {"type": "mrkdwn", "text": format!("*Schema*\n{}", e.schema_id)},
            {"type": "mrkdwn", "text": format!("*Status*\n{emoji} {}", e.status)},
            {"type": "mrkdwn", "text": format!("*Resource*\n{resource}")},
            {"type": "mrkdwn", "text": format!("*Duration*\n{duration}")},
        ]}),
    ];
    if let Some(r) = &e.error {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&format!("*Reason*: {r}"), 2900)}}));
    }
    let t = tail(e.output.as_deref());
    if !t.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{}```", cut(&t, 2800))}}));
    }
    blocks.push(json!({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "View execution"}, "url": url}
    ]}));
    json!({"channel": channel, "text": cut(&text, 3000), "blocks": blocks, "unfurl_links": false})
}

fn emoji_plain(e: &Execution) -> &'static str {
    match e.status.as_str() {
        "succeeded" => "✅",
        "failed" | "error" | "lost" | "timeout" => "🚨",
        _ => "ℹ️",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cloudo_core::Status;
    use cloudo_core::conformance::new_execution;

    #[test]
    fn aliases_priorities_and_bounds() {
        let mut e = new_execution("a", Status::Failed);
        assert_eq!(alias_of(&e), "cloudo:a");
        e.env
            .insert("RESOURCE_ID".into(), "/subscriptions/s/x".into());
        assert_eq!(alias_of(&e), "cloudo:a:/subscriptions/s/x");
        e.env.insert("ALERT_ID".into(), "/alerts/1".into());
        assert_eq!(alias_of(&e), "/alerts/1");
        e.env.insert("ALERT_ID".into(), "x".repeat(600));
        assert!(alias_of(&e).len() < 100);
        assert_eq!(priority(&e, None), "P3");
        for (sev, p) in [("Sev0", "P1"), ("Sev2", "P3"), ("Sev4", "P5")] {
            e.env.insert("ALERT_SEVERITY".into(), sev.into());
            assert_eq!(priority(&e, None), p);
        }
        e.name = "n".repeat(300);
        let (_, _, body) = opsgenie_create(&e, None, "a", &[], "u");
        assert_eq!(body["message"].as_str().unwrap().chars().count(), 130);
        let out: String = (0..100).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail(Some(&out)).lines().count(), 20);
        assert!(tail(Some(&out)).ends_with("line 99"));
        assert_eq!(
            alias_path("a b/c", "close"),
            "/v2/alerts/a%20b%2Fc/close?identifierType=alias"
        );
    }
}
