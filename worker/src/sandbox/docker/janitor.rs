//! Containers past their deadline: a worker killed mid-run cannot remove its container, so
//! each carries its deadline in a label and every docker sandbox sweeps them.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};

/// Label with the Unix time after which a container is an orphan.
pub(super) const DEADLINE_LABEL: &str = "cloudo.deadline";
/// Label with the execution a container runs.
pub(super) const EXEC_LABEL: &str = "cloudo.exec_id";

pub(super) async fn remove(docker: &Docker, id: &str) -> bool {
    let opts = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(opts)).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(container = id, error = %e, "cannot remove container");
            false
        }
    }
}

pub(super) async fn remove_orphans(docker: &Docker) -> usize {
    let filters = HashMap::from([("label", vec![DEADLINE_LABEL])]);
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = match docker.list_containers(Some(opts)).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "docker: cannot list containers to find orphans");
            return 0;
        }
    };
    let now = unix_now();
    let mut removed = 0;
    for c in containers {
        let deadline = c
            .labels
            .as_ref()
            .and_then(|l| l.get(DEADLINE_LABEL))
            .and_then(|d| d.parse::<u64>().ok());
        let (Some(id), Some(deadline)) = (c.id, deadline) else {
            continue;
        };
        if deadline < now && remove(docker, &id).await {
            let exec_id = c.labels.as_ref().and_then(|l| l.get(EXEC_LABEL));
            tracing::warn!(container = %id, exec_id = ?exec_id,
                "removed a runbook container past its deadline (its worker stopped)");
            removed += 1;
        }
    }
    removed
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
