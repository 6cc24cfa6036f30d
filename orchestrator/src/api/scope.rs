//! Keys limited to some schemas (`scope`): what they may run, approve and read. Refusals
//! are 403 naming the key, what it tried, and its scope.

use axum::http::StatusCode;
use cloudo_core::{Execution, Schema};

use super::AppState;
use super::auth::Identity;
use super::error::ApiError;

fn refused(who: &Identity, what: &str, schema_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "out_of_scope",
        format!(
            "key {:?} may not {what} schema {schema_id:?}: its scope is {}",
            who.name, who.scope
        ),
    )
}

/// May `who` `what` (run, approve, read...) this schema?
pub fn check_schema(who: Option<&Identity>, s: &Schema, what: &str) -> Result<(), ApiError> {
    match who {
        Some(w) if !w.scope.allows_schema(s) => Err(refused(w, what, &s.id)),
        _ => Ok(()),
    }
}

/// Whether `who` may see `e` (its schema as the catalog has it now; a schema gone from the
/// catalog is matched by its id only).
pub fn may_see(state: &AppState, who: Option<&Identity>, e: &Execution) -> bool {
    let Some(w) = who.filter(|w| !w.scope.is_all()) else {
        return true;
    };
    match state.ingest.catalog.get().get(&e.schema_id) {
        Some(s) => w.scope.allows_schema(s),
        None => w.scope.allows(&e.schema_id, "", &[]),
    }
}

/// May `who` `what` this execution?
pub fn check_execution(
    state: &AppState,
    who: Option<&Identity>,
    e: &Execution,
    what: &str,
) -> Result<(), ApiError> {
    match who {
        Some(w) if !may_see(state, who, e) => Err(refused(w, what, &e.schema_id)),
        _ => Ok(()),
    }
}
