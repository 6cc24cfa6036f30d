//! `cloudo schemas list|show|apply|validate` and `cloudo routes test`.

use reqwest::Method;
use serde_json::{Value, json};

use super::args::{RoutesArgs, RoutesCommand, SchemasArgs, SchemasCommand};
use super::{connect, print_json, read_input, str_of};
use crate::client::http::Call;
use crate::client::render::{Style, Table};
use crate::client::{Failure, exit};

pub async fn schemas(a: SchemasArgs) -> Result<u8, Failure> {
    let json = a.client.json;
    match a.command {
        SchemasCommand::Validate { file } => validate(&file, json),
        SchemasCommand::List => {
            let client = connect(&a.client)?;
            let list: Value = client.get("/api/schemas", Call::default()).await?;
            if json {
                print_json(&list);
            } else {
                print_schemas(&list);
            }
            Ok(exit::OK)
        }
        SchemasCommand::Show { id } => {
            let client = connect(&a.client)?;
            let s: Value = client
                .get(&format!("/api/schemas/{id}"), Call::default())
                .await?;
            // Shown as JSON either way: it is a document, and what `PUT` takes back.
            print_json(&s);
            Ok(exit::OK)
        }
        SchemasCommand::Apply { file } => {
            let text = read_input(&file)?;
            // The same check as the server's, before anything is sent.
            cloudo_core::Catalog::parse(&text).map_err(|e| {
                Failure::new(format!("{}: {}: {}", file.display(), e.location, e.message))
            })?;
            let client = connect(&a.client)?;
            let call = Call {
                body: Some(text),
                ..Call::default()
            };
            let list: Value = client.send(Method::PUT, "/api/schemas", call).await?;
            if json {
                print_json(&list);
            } else {
                let n = list["schemas"].as_array().map_or(0, Vec::len);
                println!("applied: the catalog has {n} schemas");
                if let Some(f) = list["file"].as_str() {
                    eprintln!(
                        "note: the server was started with --catalog {f}, which replaces this at its next start"
                    );
                }
            }
            Ok(exit::OK)
        }
    }
}

/// Offline: ClouDO's ROUTING_RULES as notification routes. Team credentials become
/// references to ClouDO's variables (`SLACK_TOKEN_<TEAM>`, `OPSGENIE_API_KEY_<TEAM>`), all of
/// them: the conversion may run far from the server. Those not set here are named on stderr.
pub fn import_routing(a: &crate::commands::cli::ImportRoutingArgs) -> Result<u8, Failure> {
    use cloudo_core::notify::cloudo;
    let text = read_input(&a.file)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: not JSON: {e}", a.file.display())))?;
    if !cloudo::looks_like_cloudo(&value) {
        return Err(Failure::new(format!(
            "{}: not ClouDO's ROUTING_RULES (no version, defaults or rules with a list of actions)",
            a.file.display()
        )));
    }
    let routes = cloudo::from_cloudo(&value, &|_| true)
        .map_err(|e| Failure::new(format!("{}: {e}", a.file.display())))?;
    for var in routes.env_references() {
        if std::env::var_os(&var).is_none() {
            eprintln!(
                "cloudo: note: {var} is referenced and not set here; set it where the server runs"
            );
        }
    }
    if a.json {
        print_json(&serde_json::to_value(&routes).map_err(|e| Failure::new(e.to_string()))?);
    } else {
        let yaml = routes.to_yaml().map_err(Failure::new)?;
        print!("{yaml}");
    }
    Ok(exit::OK)
}

/// Offline: the errors `cloudo serve` would give for this file at start-up.
fn validate(file: &std::path::Path, json: bool) -> Result<u8, Failure> {
    let text = read_input(file)?;
    match cloudo_core::Catalog::parse(&text) {
        Ok(catalog) => {
            let n = catalog.schemas().len();
            if json {
                print_json(&json!({ "valid": true, "schemas": n }));
            } else {
                println!("{}: valid, {n} schemas", file.display());
            }
            Ok(exit::OK)
        }
        Err(e) => {
            if json {
                print_json(&json!({
                    "valid": false,
                    "location": e.location,
                    "message": e.message,
                }));
                Ok(exit::REFUSED)
            } else {
                Err(Failure::new(format!(
                    "{}: {}: {}",
                    file.display(),
                    e.location,
                    e.message
                )))
            }
        }
    }
}

fn print_schemas(list: &Value) {
    let style = Style::detect();
    let mut t = Table::new(&[
        "ID", "NAME", "RUNBOOK", "POOL", "ONCALL", "APPROVAL", "ENABLED",
    ]);
    for s in list["schemas"].as_array().into_iter().flatten() {
        let yes = |field: &str| if s[field] == true { "yes" } else { "no" }.to_string();
        t.plain_row(vec![
            str_of(s, "id"),
            str_of(s, "name"),
            str_of(s, "runbook"),
            str_of(s, "worker"),
            yes("oncall"),
            yes("require_approval"),
            yes("enabled"),
        ]);
    }
    print!("{}", t.render(style));
    if let Some(f) = list["file"].as_str() {
        eprintln!("(from --catalog {f} at start-up)");
    }
}

pub async fn routes(a: RoutesArgs) -> Result<u8, Failure> {
    let RoutesCommand::Test { alert } = &a.command;
    let text = read_input(alert)?;
    serde_json::from_str::<Value>(&text)
        .map_err(|e| Failure::new(format!("{}: not JSON: {e}", alert.display())))?;
    let client = connect(&a.client)?;
    let call = Call {
        body: Some(text),
        ..Call::default()
    };
    let answer: Value = client.send(Method::POST, "/api/routes/test", call).await?;
    if a.client.json {
        print_json(&answer);
        return Ok(exit::OK);
    }
    let style = Style::detect();
    for al in answer["alerts"].as_array().into_iter().flatten() {
        println!(
            "{}  condition={}  severity={}",
            style.bold(&str_of(al, "alert_rule")),
            al["condition"].as_str().unwrap_or("-"),
            al["severity"].as_str().unwrap_or("-"),
        );
        match al["chosen_by"].as_str() {
            Some(by) => println!("  chosen by: {by}"),
            None => println!("  chosen by: nothing (no rule or schema matched)"),
        }
        for s in al["schemas"].as_array().into_iter().flatten() {
            match s["declined"].as_str() {
                None => println!("  runs: {}", str_of(s, "id")),
                Some(why) => println!("  would not run {}: {why}", str_of(s, "id")),
            }
        }
        if let Some(env) = al["env"].as_object() {
            for (k, v) in env {
                println!(
                    "  {}",
                    style.dim(&format!("{k}={}", v.as_str().unwrap_or_default()))
                );
            }
        }
    }
    Ok(exit::OK)
}
