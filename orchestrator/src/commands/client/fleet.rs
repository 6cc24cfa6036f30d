//! `cloudo workers`, `cloudo schedules`, and `cloudo keys --url` (keys through the API).

use reqwest::Method;
use serde_json::{Value, json};

use super::args::ClientArgs;
use super::{connect, print_json, str_of};
use crate::client::http::Call;
use crate::client::render::{Style, Table, ago};
use crate::client::{Failure, exit};
use crate::commands::cli::KeysCommand;

pub async fn workers(a: ClientArgs) -> Result<u8, Failure> {
    let client = connect(&a)?;
    let w: Value = client.get("/api/workers", Call::default()).await?;
    if a.json {
        print_json(&w);
        return Ok(exit::OK);
    }
    let style = Style::detect();
    let now = chrono::Utc::now();
    let mut pools = Table::new(&["POOL", "WORKERS", "CAPACITY", "RUNNING"]);
    for p in w["pools"].as_array().into_iter().flatten() {
        pools.plain_row(vec![
            str_of(p, "pool"),
            p["workers"].to_string(),
            p["capacity"].to_string(),
            p["running"].to_string(),
        ]);
    }
    print!("{}", pools.render(style));
    let mut t = Table::new(&[
        "WORKER",
        "POOLS",
        "VERSION",
        "RUNNING",
        "LAST SEEN",
        "ALIVE",
    ]);
    for w in w["workers"].as_array().into_iter().flatten() {
        let alive = if w["alive"] == true { "yes" } else { "no" };
        let pools: Vec<String> = w["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect();
        t.row(vec![
            (str_of(w, "id"), str_of(w, "id")),
            (pools.join(","), pools.join(",")),
            (str_of(w, "version"), str_of(w, "version")),
            {
                let r = format!(
                    "{}/{}",
                    w["running"].as_array().map_or(0, Vec::len),
                    w["capacity"]
                );
                (r.clone(), r)
            },
            {
                let s = ago(w["last_seen"].as_str(), now);
                (s.clone(), s)
            },
            (
                alive.to_string(),
                if alive == "yes" {
                    alive.to_string()
                } else {
                    style.status("lost")
                },
            ),
        ]);
    }
    println!();
    print!("{}", t.render(style));
    Ok(exit::OK)
}

pub async fn schedules(a: ClientArgs) -> Result<u8, Failure> {
    let client = connect(&a)?;
    let s: Value = client.get("/api/schedules", Call::default()).await?;
    if a.json {
        print_json(&s);
        return Ok(exit::OK);
    }
    let style = Style::detect();
    let now = chrono::Utc::now();
    let mut t = Table::new(&[
        "ID", "SCHEMA", "CRON", "TZ", "ENABLED", "NEXT RUN", "LAST RUN",
    ]);
    for e in s["schedules"].as_array().into_iter().flatten() {
        let next = e["next_run"]
            .as_str()
            .map_or_else(|| "-".to_string(), |t| ago(Some(t), now));
        let last = e["last_run"]["tick"]
            .as_str()
            .map_or_else(|| "-".to_string(), |t| ago(Some(t), now));
        t.plain_row(vec![
            str_of(e, "id"),
            str_of(e, "schema"),
            str_of(e, "cron"),
            e["tz"].as_str().unwrap_or("UTC").to_string(),
            if e["enabled"] == false { "no" } else { "yes" }.to_string(),
            next,
            last,
        ]);
    }
    print!("{}", t.render(style));
    Ok(exit::OK)
}

/// `cloudo keys ... --url`: the same commands, through `/api/keys` (admin).
pub async fn keys(a: ClientArgs, command: KeysCommand) -> Result<u8, Failure> {
    let client = connect(&a)?;
    match command {
        KeysCommand::Create {
            name,
            role,
            expires_at,
            pool,
            scope,
        } => {
            let mut body = json!({ "name": name, "role": role });
            for (k, v) in [("expires_at", expires_at), ("pool", pool)] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            if !scope.is_empty() {
                body["scope"] = json!(scope);
            }
            let created: Value = client
                .send(Method::POST, "/api/keys", Call::json(&body)?)
                .await?;
            if a.json {
                print_json(&created);
            } else {
                eprintln!("created key {name:?} with role {role}; it is shown only now:");
                println!("{}", str_of(&created, "key"));
            }
        }
        KeysCommand::List => {
            let list: Value = client.get("/api/keys", Call::default()).await?;
            if a.json {
                print_json(&list);
            } else {
                let now = chrono::Utc::now();
                let mut t = Table::new(&["NAME", "ROLE", "POOL", "SCOPE", "EXPIRES", "LAST USED"]);
                for k in list["items"].as_array().into_iter().flatten() {
                    let scope = match &k["scope"] {
                        Value::Array(s) if !s.is_empty() => s
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(","),
                        Value::String(s) if !s.is_empty() => s.clone(),
                        _ => "*".to_string(),
                    };
                    t.plain_row(vec![
                        str_of(k, "name"),
                        str_of(k, "role"),
                        k["pool"].as_str().unwrap_or("-").to_string(),
                        scope,
                        k["expires_at"].as_str().unwrap_or("never").to_string(),
                        ago(k["last_used_at"].as_str(), now),
                    ]);
                }
                print!("{}", t.render(Style::detect()));
            }
        }
        KeysCommand::Revoke { name } => {
            let _: Value = client
                .send(
                    Method::DELETE,
                    &format!("/api/keys/{name}"),
                    Call::default(),
                )
                .await?;
            if a.json {
                print_json(&json!({ "revoked": name }));
            } else {
                eprintln!("revoked {name:?}");
            }
        }
    }
    Ok(exit::OK)
}
