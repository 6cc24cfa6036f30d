//! [`Outbox`] conformance.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::execution::{ExecId, Status};
use crate::store::Outbox;
use crate::time;

/// Runs every `Outbox` test against stores made by `make` (one fresh store per test).
pub async fn run_all<S: Outbox, F: Fn() -> Fut, Fut: std::future::Future<Output = S>>(make: F) {
    outbox(make().await).await;
}

async fn outbox(s: impl Outbox) {
    use crate::notify::{Delivery, Notification};
    let a = ExecId::generate();
    let b = ExecId::generate();
    let mk = |id: &ExecId, action: &str| {
        Notification::new(
            id,
            Status::Failed,
            "opsgenie",
            action,
            "default",
            "alias-1",
            "/v2/alerts".into(),
            &serde_json::json!({"message": "m"}),
        )
    };
    let first = mk(&a, "create");
    let mut second = mk(&b, "close");
    second.state = Delivery::Held;
    let third = mk(&a, "note");
    s.add_notifications(&[first.clone(), second.clone(), third.clone()])
        .await
        .unwrap();
    let open = s.open_notifications(10).await.unwrap();
    assert_eq!(
        open,
        vec![first.clone(), second.clone(), third.clone()],
        "oldest first"
    );
    assert_eq!(s.open_notifications(2).await.unwrap().len(), 2);
    let mut done = first.clone();
    done.state = Delivery::Delivered;
    done.attempts = 2;
    done.last_error = Some("HTTP 503".into());
    done.delivered_at = Some(time::now());
    done.reply = Some("C123 1700000000.000100".into());
    s.update_notification(&done).await.unwrap();
    let mut gave_up = third.clone();
    gave_up.state = Delivery::Failed;
    s.update_notification(&gave_up).await.unwrap();
    assert_eq!(s.open_notifications(10).await.unwrap(), vec![second]);
    assert_eq!(s.notifications_for(&a).await.unwrap(), vec![done, gave_up]);
    assert!(
        s.notifications_for(&ExecId::generate())
            .await
            .unwrap()
            .is_empty()
    );
}
