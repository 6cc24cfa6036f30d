use chrono::{DateTime, Utc};

use super::*;

fn at(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}

fn schedule(cron: &str, tz: &str) -> Schedule {
    Schedule::new(
        ScheduleEntry {
            id: "s".into(),
            schema: "x".into(),
            cron: cron.into(),
            tz: tz.into(),
            run_args: None,
            enabled: true,
            catch_up: CatchUp::Run,
        },
        false,
    )
    .expect("valid schedule")
}

#[test]
fn next_ticks_table() {
    // (expression, time zone, after, next)
    let table = [
        (
            "*/5 * * * *",
            "UTC",
            "2026-12-03T10:02:00Z",
            "2026-12-03T10:05:00Z",
        ),
        // Whole seconds, whatever the fraction of the start.
        (
            "* * * * * *",
            "UTC",
            "2026-12-03T10:02:00.75Z",
            "2026-12-03T10:02:01Z",
        ),
        (
            "*/15 * * * * *",
            "UTC",
            "2026-12-03T10:00:00Z",
            "2026-12-03T10:00:15Z",
        ),
        (
            "0 9 * * 1-5",
            "UTC",
            "2026-12-04T10:00:00Z",
            "2026-12-07T09:00:00Z",
        ),
        (
            "0 9 * * MON",
            "Europe/Berlin",
            "2026-12-01T00:00:00Z",
            "2026-12-07T08:00:00Z",
        ),
        (
            "@daily",
            "America/New_York",
            "2026-12-03T06:00:00Z",
            "2026-12-04T05:00:00Z",
        ),
        // Spring forward in Berlin (29 March 2026, 02:00 -> 03:00): 02:30 does not exist
        // that day, so that day has no run.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            "2026-03-30T00:30:00Z",
        ),
        // 03:30 exists: it runs.
        (
            "30 3 * * *",
            "Europe/Berlin",
            "2026-03-28T12:00:00Z",
            "2026-03-29T01:30:00Z",
        ),
        // Fall back (25 October 2026, 03:00 -> 02:00): 02:30 happens twice, runs the first.
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-24T12:00:00Z",
            "2026-10-25T00:30:00Z",
        ),
        (
            "30 2 * * *",
            "Europe/Berlin",
            "2026-10-25T00:30:00Z",
            "2026-10-26T01:30:00Z",
        ),
        // Hourly over the fall back: 02:00 CEST, then (02:00 CET skipped) 03:00 CET.
        (
            "0 * * * *",
            "Europe/Berlin",
            "2026-10-24T23:30:00Z",
            "2026-10-25T00:00:00Z",
        ),
        (
            "0 * * * *",
            "Europe/Berlin",
            "2026-10-25T00:00:00Z",
            "2026-10-25T02:00:00Z",
        ),
    ];
    for (cron, tz, after, next) in table {
        assert_eq!(
            schedule(cron, tz).next_after(at(after)),
            Some(at(next)),
            "{cron} in {tz} after {after}"
        );
    }
}

#[test]
fn refuses_bad_expressions_zones_and_ids() {
    let entry = |id: &str, cron: &str, tz: &str| ScheduleEntry {
        id: id.into(),
        schema: "x".into(),
        cron: cron.into(),
        tz: tz.into(),
        run_args: None,
        enabled: true,
        catch_up: CatchUp::Skip,
    };
    for (id, cron, tz, says) in [
        ("a", "* * * *", "UTC", "4 fields"),
        ("a", "0 0 0 1 1 * 2030", "UTC", "7 fields"),
        ("a", "61 * * * *", "UTC", "cron"),
        ("a", "* * * * *", "Mars/Base", "tz"),
        ("a b", "* * * * *", "UTC", "id"),
    ] {
        let e = Schedule::new(entry(id, cron, tz), false).expect_err(cron);
        assert!(e.contains(says), "{cron}: {e}");
    }
    let mut bad_args = entry("a", "* * * * *", "UTC");
    bad_args.run_args = Some("'open".into());
    assert!(Schedule::new(bad_args, false).is_err());
}

#[test]
fn missed_ticks_coalesce_into_the_latest() {
    let s = schedule("* * * * *", "UTC");
    assert_eq!(
        s.latest_due(at("2026-12-03T10:00:00Z"), at("2026-12-03T10:05:30Z")),
        Some(at("2026-12-03T10:05:00Z"))
    );
    assert_eq!(
        s.latest_due(at("2026-12-03T10:05:00Z"), at("2026-12-03T10:05:30Z")),
        None
    );
}

#[test]
fn a_tick_is_claimed_once_unless_its_claimer_died() {
    let (t1, t2) = (at("2026-12-03T10:00:00Z"), at("2026-12-03T10:01:00Z"));
    let now = at("2026-12-03T10:00:01Z");
    let mut k = Ticks::default();
    assert!(k.claim(t1, now));
    assert!(!k.claim(t1, now), "the second replica");
    // Unrecorded for longer than the claim timeout: taken over.
    assert!(k.claim(t1, now + CLAIM_TIMEOUT));
    let id = ExecId::generate();
    k.record(t1, Some(id.clone()));
    assert!(
        !k.claim(t1, now + CLAIM_TIMEOUT * 3),
        "recorded: never again"
    );
    assert_eq!(k.last_exec, Some(id));
    assert!(k.claim(t2, now));
    assert!(!k.claim(t1, now), "an older tick");
    k.pass(at("2026-12-03T10:05:00Z"));
    assert!(!k.claim(t2, now));
}
