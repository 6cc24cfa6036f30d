//! The operations of workers, the console's session, and operations (health, metrics,
//! this document).

use axum::http::Method as M;
use cloudo_worker::protocol::{
    AliveRequest, FinishAnswer, FinishRequest, HeartbeatAnswer, HeartbeatRequest, PayloadAnswer,
    RunRef, StartAnswer,
};

use super::Op;
use crate::api::session::{Me, Providers, SignIn};
use crate::api::views::{Health, Ready, Workers};

pub fn operations() -> Vec<Op> {
    vec![
        Op::new(
            M::POST,
            "/api/worker/executions/{exec_id}/start",
            "workers",
            "A worker starts a run",
        )
        .body::<RunRef>(true, "the worker and the delivery")
        .answer::<StartAnswer>(200, "run it (from this log offset), or drop the job")
        .errors(&[400, 404, 409]),
        Op::new(
            M::POST,
            "/api/worker/executions/{exec_id}/heartbeat",
            "workers",
            "A running run's heartbeat and output",
        )
        .body::<HeartbeatRequest>(true, "the run, and output not yet acknowledged")
        .answer::<HeartbeatAnswer>(200, "go on or stop, and the log's size")
        .errors(&[400, 404, 409]),
        Op::new(
            M::POST,
            "/api/worker/executions/{exec_id}/finish",
            "workers",
            "A run's outcome",
        )
        .body::<FinishRequest>(true, "the outcome and the last output")
        .answer::<FinishAnswer>(200, "the execution's status")
        .errors(&[400, 404, 409]),
        Op::new(
            M::POST,
            "/api/worker/executions/{exec_id}/payload",
            "workers",
            "A run's request body",
        )
        .body::<RunRef>(true, "the worker and the delivery")
        .answer::<PayloadAnswer>(200, "the body")
        .errors(&[400, 404, 409]),
        Op::new(
            M::POST,
            "/api/worker/alive",
            "workers",
            "A worker's presence and capacity",
        )
        .body::<AliveRequest>(true, "the worker")
        .answer_as(204, None, "recorded")
        .errors(&[400]),
        Op::new(M::GET, "/api/workers", "workers", "Pools and workers")
            .answer::<Workers>(200, "pools, and workers seen recently"),
        Op::new(
            M::POST,
            "/api/session",
            "session",
            "Sign in to the console with a key",
        )
        .body::<SignIn>(true, "the key")
        .answer::<Me>(201, "signed in; the session cookie is set")
        .errors(&[400, 401, 415, 429]),
        Op::new(M::GET, "/api/session", "session", "Who is signed in")
            .answer::<Me>(200, "the identity"),
        Op::new(M::DELETE, "/api/session", "session", "Sign out").answer_as(
            204,
            None,
            "signed out; the cookie is deleted",
        ),
        Op::new(
            M::GET,
            "/api/session/providers",
            "session",
            "Sign-in methods",
        )
        .answer::<Providers>(200, "whether single sign-on is configured"),
        Op::new(
            M::GET,
            "/api/session/oidc/login",
            "session",
            "Start single sign-on",
        )
        .answer_as(303, None, "to the provider")
        .errors(&[404]),
        Op::new(
            M::GET,
            "/api/session/oidc/callback",
            "session",
            "Single sign-on callback",
        )
        .answer_as(303, None, "signed in, to the console")
        .errors(&[400, 403, 404]),
        Op::new(M::GET, "/", "console", "The console").answer_as(
            200,
            Some("text/html"),
            "the console's page",
        ),
        Op::new(M::GET, "/ui/{*path}", "console", "The console's files")
            .answer_as(200, Some("text/javascript"), "a script or style sheet")
            .errors(&[404]),
        Op::new(M::GET, "/metrics", "operations", "Prometheus metrics").answer_as(
            200,
            Some("text/plain"),
            "the Prometheus text format",
        ),
        Op::new(M::GET, "/api/openapi.json", "operations", "This document").answer_as(
            200,
            Some("application/json"),
            "OpenAPI 3.1",
        ),
        Op::new(M::GET, "/api/healthz", "operations", "Liveness").answer::<Health>(200, "alive"),
        Op::new(M::GET, "/api/readyz", "operations", "Readiness")
            .answer::<Ready>(200, "ready")
            .answer::<Ready>(503, "not ready (which check failed)"),
    ]
}
