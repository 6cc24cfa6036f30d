//! Property-based fuzzing of the small languages operators write: cron expressions (with
//! time zones) and `run_args`. Nothing may panic or hang; accepted schedules give ticks in
//! order; `run_args` splits like a POSIX shell (what a shell quotes, it splits back to the
//! same arguments). `make test` runs a short pass; `make fuzz` a long one.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use cloudo_core::schedule::{Schedule, own_entry, parse_cron};
use cloudo_core::schema::split_args;
use proptest::prelude::*;

/// Tokens cron fields are made of, so random expressions are often almost valid.
fn cron_field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (0u32..70).prop_map(|n| n.to_string()),
        (0u32..70, 0u32..70).prop_map(|(a, b)| format!("{a}-{b}")),
        (0u32..70).prop_map(|n| format!("*/{n}")),
        (0u32..70, 0u32..70, 0u32..70).prop_map(|(a, b, c)| format!("{a}-{b}/{c}")),
        prop::sample::select(vec![
            "L", "W", "15W", "5L", "1#3", "MON-FRI", "JAN", "?", "SUN,SAT", "LW", "0#9", ",", "-",
            "//", "",
        ])
        .prop_map(String::from),
        "\\PC{0,6}",
    ]
}

/// A field within `lo..=hi`: a value, a range, a step or a list.
fn in_range(lo: u32, hi: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        (lo..=hi).prop_map(|n| n.to_string()),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{a}-{b}")),
        (1..=hi.max(1)).prop_map(|n| format!("*/{n}")),
        (lo..=hi, lo..=hi).prop_map(|(a, b)| format!("{a},{b}")),
    ]
}

/// Mostly valid expressions: every field in its range (5 fields, or 6 with seconds).
fn plausible_cron() -> impl Strategy<Value = String> {
    (
        prop::option::of(in_range(0, 59)),
        in_range(0, 59),
        in_range(0, 23),
        in_range(1, 31),
        in_range(1, 12),
        in_range(0, 7),
    )
        .prop_map(|(s, m, h, dom, mon, dow)| {
            let five = format!("{m} {h} {dom} {mon} {dow}");
            s.map_or(five.clone(), |s| format!("{s} {five}"))
        })
}

fn cron_expr() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => plausible_cron(),
        1 => prop::collection::vec(cron_field(), 0..8).prop_map(|f| f.join(" ")),
        1 => prop::sample::select(vec![
            "@yearly", "@monthly", "@weekly", "@daily", "@hourly", "@reboot", "@every", "@",
        ])
        .prop_map(String::from),
        1 => "\\PC{0,40}",
    ]
}

fn tz() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "UTC",
        "Europe/Rome",
        "America/New_York",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "Asia/Kathmandu",
        "Nowhere/Else",
        "",
    ])
    .prop_map(String::from)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn cron_expressions_never_panic_and_ticks_move_forward(
        expr in cron_expr(),
        tz in tz(),
        at in 0i64..4_102_444_800,
    ) {
        let _ = parse_cron(&expr);
        if let Ok(s) = Schedule::new(own_entry("s", &expr, Some(&tz)), true) {
            let after = Utc.timestamp_opt(at, 0).single().unwrap();
            if let Some(next) = s.next_after(after) {
                prop_assert!(next > after, "{expr:?} in {tz}: {next} after {after}");
                if let Some(again) = s.next_after(next) {
                    prop_assert!(again > next, "{expr:?} in {tz}: {again} after {next}");
                }
            }
            let now = after + chrono::Duration::hours(3);
            if let Some(due) = s.latest_due(after, now) {
                prop_assert!(due > after && due <= now, "{expr:?}: {due}");
            }
        }
    }

    #[test]
    fn run_args_never_panic(text in "\\PC{0,200}") {
        let _ = split_args(&text);
    }

    #[test]
    fn run_args_split_back_what_a_shell_quotes(
        argv in prop::collection::vec("[^\\x00]{0,20}", 0..8),
    ) {
        let quoted: Vec<String> = argv
            .iter()
            .map(|a| shlex::try_quote(a).unwrap().into_owned())
            .collect();
        let line = quoted.join(" ");
        prop_assert_eq!(split_args(&line), Some(argv), "{}", line);
    }
}

/// `PROPTEST_CASES` (`make fuzz`), else a short pass.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512)
}
