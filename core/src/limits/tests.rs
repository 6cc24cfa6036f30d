use super::*;

fn ids(n: usize) -> Vec<ExecId> {
    (0..n).map(|_| ExecId::generate()).collect()
}

#[test]
fn slots_hold_wait_in_order_and_hand_over() {
    let now = time::now();
    let id = ids(4);
    let mut s = Slots::default();
    assert_eq!(s.acquire(&id[0], 1, true, now), Acquired::Holding);
    assert_eq!(
        s.acquire(&id[0], 1, true, now),
        Acquired::Holding,
        "asked twice"
    );
    assert_eq!(s.acquire(&id[1], 1, true, now), Acquired::Waiting(0));
    assert_eq!(s.acquire(&id[2], 1, true, now), Acquired::Waiting(1));
    assert_eq!(s.acquire(&id[1], 1, true, now), Acquired::Waiting(0));
    assert_eq!(s.acquire(&id[3], 1, false, now), Acquired::Busy);
    assert_eq!(s.release(&id[0], now), vec![id[1].clone()]);
    assert_eq!(s.acquire(&id[1], 1, true, now), Acquired::Holding);
    // Leaving the line frees nothing, and keeps the order of the rest.
    assert_eq!(s.release(&id[3], now), vec![]);
    assert_eq!(s.release(&id[1], now), vec![id[2].clone()]);
    assert_eq!(s.release(&id[2], now), vec![]);
    assert!(s.is_idle());
}

#[test]
fn a_newcomer_does_not_pass_the_line_and_the_line_is_bounded() {
    let now = time::now();
    let id = ids(3);
    let mut s = Slots::default();
    s.acquire(&id[0], 1, true, now);
    s.acquire(&id[1], 1, true, now);
    // A slot frees without a promotion (a limit raised): the first in line gets it.
    assert_eq!(s.acquire(&id[2], 2, true, now), Acquired::Waiting(1));
    assert_eq!(s.promote(now), vec![id[1].clone()]);
    let mut full = Slots::default();
    full.acquire(&id[0], 1, true, now);
    for _ in 0..MAX_WAITING {
        full.acquire(&ExecId::generate(), 1, true, now);
    }
    assert_eq!(full.acquire(&id[1], 1, true, now), Acquired::LineFull);
}

#[test]
fn windows_count_an_hour_and_trip_once() {
    let now = time::now();
    let id = ids(4);
    let mut w = Window::default();
    assert_eq!(w.count(&id[0], 2, now), Counted::Allowed);
    assert_eq!(w.count(&id[1], 2, now), Counted::Allowed);
    assert_eq!(w.count(&id[1], 2, now), Counted::Allowed, "counted once");
    assert_eq!(w.count(&id[2], 2, now), Counted::Limited { first: true });
    assert_eq!(w.count(&id[3], 2, now), Counted::Limited { first: false });
    assert_eq!(w.frees_at(), Some(now + HOUR));
    let later = now + HOUR;
    assert_eq!(w.count(&id[3], 2, later), Counted::Allowed);
    assert!(!w.tripped);
    assert!(w.is_idle(later + HOUR));
}
