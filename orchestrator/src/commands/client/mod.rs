//! The client commands: `cloudo trigger`, `logs`, `ls`, `show`, `cancel`, `approve`,
//! `reject`, `schemas`, `routes test`, `workers`, `schedules`, `keys --url`, `login` and
//! `completions`. Each returns its exit code, or a [`Failure`] printed as one line.

pub mod args;
mod catalog;
mod fleet;
mod runs;

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;

use crate::client::http::{Call, Client};
use crate::client::profile::{self, Profile};
use crate::client::{Failure, exit};
use crate::commands::cli::{Command, KeysArgs};
use args::{ClientArgs, CompletionsArgs, LoginArgs};

/// Runs a client command on a runtime of its own.
pub fn run(command: Command) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(Err(Failure::new(format!("cannot start: {e}")))),
    };
    let result = match command {
        Command::Trigger(a) => rt.block_on(runs::trigger(*a)),
        Command::Logs(a) => rt.block_on(runs::logs(a)),
        Command::Ls(a) => rt.block_on(runs::ls(a)),
        Command::Show(a) => rt.block_on(runs::show(a)),
        Command::Cancel(a) => rt.block_on(runs::cancel(a)),
        Command::Approve(a) => rt.block_on(runs::decide(a, "approve")),
        Command::Reject(a) => rt.block_on(runs::decide(a, "reject")),
        Command::Schemas(a) => rt.block_on(catalog::schemas(a)),
        Command::Routes(a) => rt.block_on(catalog::routes(a)),
        Command::ImportRouting(a) => catalog::import_routing(&a),
        Command::Workers(a) => rt.block_on(fleet::workers(a)),
        Command::Schedules(a) => rt.block_on(fleet::schedules(a)),
        Command::Login(a) => rt.block_on(login(a)),
        Command::Completions(a) => completions(a),
        Command::Keys(k) if k.url.is_some() => {
            let KeysArgs {
                url,
                key,
                json,
                command,
                ..
            } = *k;
            let client = ClientArgs { url, key, json };
            rt.block_on(fleet::keys(client, command))
        }
        Command::Serve(_) | Command::Worker(_) | Command::Keys(_) => {
            Err(Failure::new("not a client command"))
        }
    };
    report(result)
}

fn report(result: Result<u8, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("cloudo: {}", f.message);
            ExitCode::from(f.exit)
        }
    }
}

/// The client for these arguments (flags, then environment, then the login file).
pub fn connect(a: &ClientArgs) -> Result<Client, Failure> {
    Client::new(profile::resolve(a.url.clone(), a.key.clone())?)
}

pub fn print_json(v: &Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        Err(_) => println!("{v}"),
    }
}

/// A string field, or empty.
pub fn str_of(v: &Value, field: &str) -> String {
    v[field].as_str().unwrap_or_default().to_string()
}

/// A file's text; `-` is stdin.
pub fn read_input(path: &Path) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))
}

/// `cloudo login`: asks for the key (not echoed; or one line of stdin), checks it against
/// the server, and saves both in the config file (mode 0600).
async fn login(a: LoginArgs) -> Result<u8, Failure> {
    let path = profile::config_path()?;
    let url = match a.url {
        Some(u) => u,
        None => profile::read_file(&path)?
            .map(|p| p.url)
            .unwrap_or_else(|| profile::DEFAULT_URL.to_string()),
    };
    profile::check_url(&url)?;
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("API key for {url}: "))
            .map_err(|e| Failure::new(format!("cannot read the key: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Failure::new(format!("cannot read the key from stdin: {e}")))?;
        line
    };
    let key = key.trim().to_string();
    if key.is_empty() {
        return Err(Failure::new("no key given"));
    }
    let p = Profile {
        url: url.clone(),
        key: Some(key),
    };
    let who: Result<Value, Failure> = Client::new(p.clone())?
        .get("/api/session", Call::default())
        .await;
    let who = match who {
        Ok(v) => format!("{} ({})", str_of(&v, "name"), str_of(&v, "role")),
        // An ingest key may not read; it still triggers.
        Err(f) if f.message.starts_with("not allowed") => "a key that may not read".to_string(),
        Err(f) => return Err(f),
    };
    profile::write_file(&path, &p)?;
    eprintln!("signed in to {url} as {who}; saved in {}", path.display());
    Ok(exit::OK)
}

fn completions(a: CompletionsArgs) -> Result<u8, Failure> {
    let mut cmd = <crate::commands::cli::Cli as clap::CommandFactory>::command();
    clap_complete::generate(a.shell, &mut cmd, "cloudo", &mut std::io::stdout());
    Ok(exit::OK)
}
