//! [`HttpReporter`]: the standalone worker's side of the worker protocol, over HTTP to the
//! orchestrator's `/api/worker/...` routes with a worker key. It speaks the types of
//! [`crate::protocol`], as the orchestrator's handlers do.

use std::time::Duration;

use async_trait::async_trait;
use cloudo_core::store::WorkerInfo;
use cloudo_core::{ExecId, Job, StatusChange};
use serde_json::Value;

use crate::protocol::{
    ALIVE_PATH, AliveRequest, FinishAnswer, FinishRequest, HeartbeatAnswer, HeartbeatRequest,
    LogPiece, PayloadAnswer, StartAnswer, exec_path,
};
use crate::reporter::{ReportError, Reporter, RunRef, Start};
use crate::secrets::Secret;

/// Reports to the orchestrator's `/api/worker/...` routes. Server errors and unreachable
/// orchestrators are `Retry` (the pool retries with backoff, holding the report); a 4xx is
/// `Refused` for good (e.g. 409: the execution already ended, as when a retried report
/// had in fact arrived).
#[derive(Debug)]
pub struct HttpReporter {
    http: reqwest::Client,
    /// Orchestrator base URLs; `current` is the one that answered last.
    base: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
    key: Secret,
}

impl HttpReporter {
    pub fn new(base: Vec<String>, key: Secret) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("cloudo-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base,
            current: Default::default(),
            key,
        })
    }

    /// Sends to the current orchestrator, moving on to the next one when it cannot be
    /// reached (each is tried once per call).
    async fn send(&self, path: &str, body: &Value) -> Result<reqwest::Response, ReportError> {
        use std::sync::atomic::Ordering;
        let n = self.base.len().max(1);
        let first = self.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let at = (first + i) % n;
            match self
                .http
                .post(format!("{}{path}", self.base[at]))
                .bearer_auth(self.key.expose())
                .json(body)
                .send()
                .await
            {
                Ok(rsp) => {
                    self.current.store(at, Ordering::Relaxed);
                    return Ok(rsp);
                }
                // reqwest's error names the URL (no secret in it); the key is a header.
                Err(e) => last = format!("orchestrator unreachable: {e}"),
            }
        }
        Err(ReportError::Retry(last))
    }

    /// POSTs `body`; the answer's text on success (a 4xx is `Refused`, 5xx, 408 and 429
    /// `Retry`).
    async fn post(&self, path: &str, body: &Value) -> Result<String, ReportError> {
        let rsp = self.send(path, body).await?;
        let status = rsp.status();
        let text = rsp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(text);
        }
        let why = format!(
            "HTTP {status} from {path}: {}",
            text.chars().take(300).collect::<String>()
        );
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(ReportError::Retry(why))
        } else if status.as_u16() == 404 {
            Err(ReportError::Gone(why))
        } else {
            Err(ReportError::Refused(why))
        }
    }

    /// POSTs a protocol request and reads its typed answer.
    async fn call<A: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<A, ReportError> {
        let body = serde_json::to_value(body).map_err(|e| ReportError::Refused(e.to_string()))?;
        let text = self.post(path, &body).await?;
        serde_json::from_str(&text)
            .map_err(|e| ReportError::Retry(format!("unexpected answer from {path}: {e}")))
    }
}

#[async_trait]
impl Reporter for HttpReporter {
    async fn start(&self, job: &Job, run: &RunRef) -> Result<Start, ReportError> {
        match self
            .call::<StartAnswer>(&exec_path(&job.exec_id, "start"), run)
            .await
        {
            Ok(a) if a.run => Ok(Start::Run {
                log_offset: a.log_offset,
            }),
            Ok(a) => Ok(Start::Drop(a.reason.unwrap_or_else(|| "refused".into()))),
            // No such execution (any more): nothing to run.
            Err(ReportError::Gone(why)) => Ok(Start::Drop(why)),
            Err(e) => Err(e),
        }
    }

    async fn heartbeat(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        log: Option<&LogPiece>,
    ) -> Result<HeartbeatAnswer, ReportError> {
        let req = HeartbeatRequest {
            run: run.clone(),
            log: log.cloned(),
        };
        self.call(&exec_path(exec_id, "heartbeat"), &req).await
    }

    async fn finish(
        &self,
        exec_id: &ExecId,
        run: &RunRef,
        change: StatusChange,
        log: Option<&LogPiece>,
    ) -> Result<(), ReportError> {
        let mut req = FinishRequest::new(run.clone(), change);
        req.log = log.cloned();
        self.call::<FinishAnswer>(&exec_path(exec_id, "finish"), &req)
            .await
            .map(|_| ())
    }

    async fn payload(&self, exec_id: &ExecId, run: &RunRef) -> Result<Option<String>, ReportError> {
        let a: PayloadAnswer = self.call(&exec_path(exec_id, "payload"), run).await?;
        Ok(a.payload)
    }

    async fn alive(&self, info: &WorkerInfo) -> Result<(), ReportError> {
        let body = serde_json::to_value(AliveRequest::new(info))
            .map_err(|e| ReportError::Refused(e.to_string()))?;
        self.post(ALIVE_PATH, &body).await.map(|_| ())
    }
}
