//! `cloudo trigger`, `logs`, `ls`, `show`, `cancel`, `approve`, `reject`.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::args::{DecideArgs, ExecArgs, LogsArgs, LsArgs, TriggerArgs};
use super::{connect, print_json, read_input, str_of};
use crate::client::follow::follow;
use crate::client::http::{Call, Client};
use crate::client::render::{Style, Table, ago, duration};
use crate::client::{Failure, exit};

/// The trigger's body: `--arg`s as a JSON object, or a JSON file.
fn body(a: &TriggerArgs) -> Result<Option<String>, Failure> {
    if let Some(path) = &a.body {
        let text = read_input(path)?;
        serde_json::from_str::<Value>(&text)
            .map_err(|e| Failure::new(format!("{}: not JSON: {e}", path.display())))?;
        return Ok(Some(text));
    }
    if a.args.is_empty() {
        return Ok(None);
    }
    let mut obj = BTreeMap::new();
    for arg in &a.args {
        let (name, value) = arg
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| Failure::new(format!("--arg {arg:?}: write it NAME=VALUE")))?;
        obj.insert(name.to_string(), value.to_string());
    }
    Ok(Some(json!(obj).to_string()))
}

pub async fn trigger(a: TriggerArgs) -> Result<u8, Failure> {
    let client = connect(&a.client)?;
    let mut call = Call {
        body: body(&a)?,
        ..Call::default()
    }
    .query("id", &a.schema);
    if a.dry_run {
        call = call.query("dry_run", "true");
    }
    if let Some(k) = &a.idempotency_key {
        call.headers.push(("idempotency-key", k.clone()));
    }
    let answer: Value = client.send(Method::POST, "/api/Trigger", call).await?;
    let first = &answer["executions"][0];
    let id = str_of(first, "exec_id");
    if !a.follow {
        if a.client.json {
            print_json(&answer);
        } else {
            let style = Style::detect();
            let dup = if answer["duplicate"] == true {
                " (a duplicate: the earlier run)"
            } else {
                ""
            };
            println!(
                "{}  {}  {}{dup}",
                style.bold(&id),
                str_of(first, "schema_id"),
                style.status(&str_of(first, "status"))
            );
            if let Some(reason) = first["reason"].as_str() {
                println!("{}", style.dim(reason));
            }
            eprintln!("follow it with: cloudo logs {id} --follow");
        }
        return Ok(exit::OK);
    }
    if id.is_empty() {
        return Err(Failure::new("the server answered without an execution"));
    }
    if !a.client.json {
        eprintln!("{id} ({})", str_of(first, "schema_id"));
    }
    finish(&client, &id, a.client.json).await
}

/// Follows to the end, says how it ended (stderr), and gives its exit code.
async fn finish(client: &Client, id: &str, json: bool) -> Result<u8, Failure> {
    let ended = follow(client, id, 0, json).await?;
    if !json {
        let style = Style::detect();
        let d = &ended.data;
        let took = duration(
            d["started_at"].as_str(),
            d["finished_at"].as_str(),
            chrono::Utc::now(),
        );
        let code = ended
            .exit_code
            .map(|c| format!(", exit code {c}"))
            .unwrap_or_default();
        let why = d["error"]
            .as_str()
            .filter(|_| ended.exit_code.is_none())
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        eprintln!("{} in {took}{code}{why}", style.status(&ended.status));
    }
    Ok(ended.exit())
}

pub async fn logs(a: LogsArgs) -> Result<u8, Failure> {
    let client = connect(&a.client)?;
    if a.follow {
        return finish(&client, &a.exec, a.client.json).await;
    }
    let path = format!("/api/executions/{}/output", a.exec);
    let mut offset = 0u64;
    let mut all = String::new();
    let mut last: Value;
    loop {
        let call = Call::default()
            .query("offset", offset)
            .query("limit", 1 << 20);
        last = client.get(&path, call).await?;
        let data = last["data"].as_str().unwrap_or_default();
        let next = last["next"].as_u64().unwrap_or(offset);
        if a.client.json {
            all.push_str(data);
        } else {
            print!("{data}");
        }
        if next <= offset || next >= last["size"].as_u64().unwrap_or(0) {
            break;
        }
        offset = next;
    }
    if a.client.json {
        print_json(&json!({
            "exec_id": last["exec_id"],
            "status": last["status"],
            "size": last["size"],
            "truncated": last["truncated"],
            "output": all,
        }));
    }
    Ok(exit::OK)
}

pub async fn ls(a: LsArgs) -> Result<u8, Failure> {
    let client = connect(&a.client)?;
    if !(1..=1000).contains(&a.limit) {
        return Err(Failure::new("--limit must be between 1 and 1000"));
    }
    let mut items: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    // A key limited to some schemas may get short pages: go on until enough are found.
    for _ in 0..20 {
        let mut call = Call::default().query("limit", a.limit - items.len());
        for (name, v) in [("status", &a.status), ("schema_id", &a.schema)] {
            if let Some(v) = v {
                call = call.query(name, v);
            }
        }
        if let Some(c) = &cursor {
            call = call.query("cursor", c);
        }
        let page: Value = client.get("/api/executions", call).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        cursor = page["next"].as_str().map(str::to_string);
        if cursor.is_none() || items.len() >= a.limit {
            break;
        }
    }
    if a.client.json {
        print_json(&json!({ "items": items, "next": cursor }));
        return Ok(exit::OK);
    }
    let style = Style::detect();
    let now = chrono::Utc::now();
    let mut t = Table::new(&[
        "ID",
        "SCHEMA",
        "STATUS",
        "RESOURCE",
        "INITIATOR",
        "REQUESTED",
        "DURATION",
    ]);
    for e in &items {
        let status = str_of(e, "status");
        let cell = |s: String| (s.clone(), s);
        t.row(vec![
            cell(str_of(e, "exec_id")),
            cell(str_of(e, "schema_id")),
            (status.clone(), style.status(&status)),
            cell(
                e["env"]["RESOURCE_NAME"]
                    .as_str()
                    .unwrap_or("-")
                    .to_string(),
            ),
            cell(str_of(e, "initiator")),
            cell(ago(e["requested_at"].as_str(), now)),
            cell(duration(
                e["started_at"].as_str(),
                e["finished_at"].as_str(),
                now,
            )),
        ]);
    }
    print!("{}", t.render(style));
    if items.is_empty() {
        eprintln!("no executions match");
    }
    Ok(exit::OK)
}

pub async fn show(a: ExecArgs) -> Result<u8, Failure> {
    let client = connect(&a.client)?;
    let e: Value = client
        .get(&format!("/api/executions/{}", a.exec), Call::default())
        .await?;
    if a.client.json {
        print_json(&e);
        return Ok(exit::OK);
    }
    let style = Style::detect();
    let now = chrono::Utc::now();
    let status = str_of(&e, "status");
    let mut t = Table::new(&["FIELD", "VALUE"]);
    let mut field = |name: &str, value: String, shown: String| {
        t.row(vec![(name.to_string(), style.dim(name)), (value, shown)]);
    };
    field("status", status.clone(), style.status(&status));
    for name in [
        "exec_id",
        "schema_id",
        "name",
        "runbook",
        "run_args",
        "commit",
        "pool",
        "worker_id",
        "initiator",
    ] {
        if let Some(v) = e[name].as_str().filter(|v| !v.is_empty()) {
            field(name, v.to_string(), v.to_string());
        }
    }
    for name in ["requested_at", "started_at", "finished_at"] {
        if let Some(v) = e[name].as_str() {
            let shown = format!("{v} ({})", ago(Some(v), now));
            field(name, shown.clone(), shown);
        }
    }
    let took = duration(e["started_at"].as_str(), e["finished_at"].as_str(), now);
    field("duration", took.clone(), took);
    if let Some(c) = e["exit_code"].as_i64() {
        field("exit_code", c.to_string(), c.to_string());
    }
    if let Some(why) = e["error"].as_str() {
        field("reason", why.to_string(), why.to_string());
    }
    field("url", str_of(&e, "url"), str_of(&e, "url"));
    print!("{}", t.render(style));
    if let Some(env) = e["env"].as_object().filter(|m| !m.is_empty()) {
        println!("\n{}", style.bold("VARIABLES"));
        for (k, v) in env {
            println!("{k}={}", v.as_str().unwrap_or_default());
        }
    }
    if let Some(ns) = e["notifications"].as_array().filter(|n| !n.is_empty()) {
        println!("\n{}", style.bold("NOTIFICATIONS"));
        for n in ns {
            println!(
                "{} {} ({}): {}",
                str_of(n, "channel"),
                str_of(n, "action"),
                str_of(n, "team"),
                str_of(n, "state")
            );
        }
    }
    Ok(exit::OK)
}

/// `cancel`, `approve` and `reject`: a POST whose answer is the execution.
async fn control(a: &ExecArgs, action: &str, body: Option<Value>) -> Result<u8, Failure> {
    let client = connect(&a.client)?;
    let call = match body {
        Some(b) => Call::json(&b)?,
        None => Call::default(),
    };
    let e: Value = client
        .send(
            Method::POST,
            &format!("/api/executions/{}/{action}", a.exec),
            call,
        )
        .await?;
    if a.client.json {
        print_json(&e);
    } else {
        let style = Style::detect();
        let status = str_of(&e, "status");
        println!("{}  {}", a.exec, style.status(&status));
    }
    Ok(exit::OK)
}

pub async fn cancel(a: ExecArgs) -> Result<u8, Failure> {
    control(&a, "cancel", None).await
}

pub async fn decide(a: DecideArgs, action: &str) -> Result<u8, Failure> {
    let body = a.comment.as_ref().map(|c| json!({ "comment": c }));
    let exec = ExecArgs {
        exec: a.exec,
        client: a.client,
    };
    control(&exec, action, body).await
}
