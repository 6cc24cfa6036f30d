//! `GET /api/openapi.json`: an OpenAPI 3.1 document of every route, built from the typed
//! views (utoipa's `ToSchema`) and the operations listed in `ops.rs`; the security of each
//! operation comes from the router's own permission table, so the document cannot claim a
//! role the router does not enforce. A test holds the operations and the routes equal.

mod op;
mod ops;
mod ops_internal;

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cloudo_core::auth::Permission;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, SecurityRequirement,
    Server,
};

use super::AppState;
use super::auth::Table;
pub use op::Op;

/// The document, built once per process from `table`.
pub fn document(table: &Table) -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| build(table))
}

pub async fn serve(State(state): State<AppState>) -> Response {
    Json(document(&state.auth_table)).into_response()
}

fn build(table: &Table) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key: `Authorization: Bearer <key>`."))
                    .build(),
            ),
        )
        .security_scheme(
            "key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-cloudo-key",
                "An API key in ClouDO's header.",
            ))),
        )
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "cloudo_session",
                "The console's session cookie; state-changing requests also need the \
                 `x-csrf-token` header of the session.",
            ))),
        );
    for op in ops::operations() {
        let perm = table
            .get(&(op.method.clone(), op.path))
            .copied()
            .unwrap_or(Permission::Public);
        let security = security_of(perm);
        let (item, schemas) = op.into_item(perm, security);
        components = components.schemas_from_iter(schemas);
        paths = paths.path(item.0, item.1);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("cloudo")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Runbook automation for on-call teams. Every error is \
                     `{\"error\": {\"code\", \"message\"}}`. Roles, from least to most: \
                     ingest, viewer, operator, admin; worker and metrics keys do only their own \
                     routes (docs/security.md).",
                ))
                .build(),
        )
        .servers(Some(vec![Server::new("/")]))
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

/// Who may call a route with `perm`: nobody needs a key for public routes.
fn security_of(perm: Permission) -> Vec<SecurityRequirement> {
    if perm == Permission::Public {
        return Vec::new();
    }
    let none: [&str; 0] = [];
    vec![
        SecurityRequirement::new("bearer", none),
        SecurityRequirement::new("key_header", none),
        SecurityRequirement::new("session", none),
    ]
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::Method;
    use cloudo_core::auth::Permission;

    /// The operations listed here and the router's routes are the same set: a route added
    /// without its description (or a description of a route that is gone) fails here.
    #[test]
    fn the_document_has_every_route_of_the_router_and_no_other() {
        let table = crate::api::route_table();
        let router: BTreeSet<(String, String)> = table
            .keys()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let ops: BTreeSet<(String, String)> = super::ops::operations()
            .iter()
            .map(|o| (o.method.to_string(), o.path.to_string()))
            .collect();
        assert_eq!(router, ops, "the router and the OpenAPI operations differ");
        assert_eq!(
            ops.len(),
            super::ops::operations().len(),
            "an operation is listed twice"
        );

        // And the built document says the same, with the router's security.
        let doc = serde_json::to_value(super::build(&table)).expect("json");
        let mut in_doc = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("item") {
                let m: Method = method.to_uppercase().parse().expect("method");
                let router_path = table
                    .keys()
                    .map(|(_, p)| *p)
                    .find(|p| super::op::openapi_path(p) == *path)
                    .expect("a router path");
                let perm = table[&(m.clone(), router_path)];
                let secured = op
                    .get("security")
                    .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()));
                assert_eq!(secured, perm != Permission::Public, "{method} {path}");
                in_doc.insert((m.to_string(), router_path.to_string()));
            }
        }
        assert_eq!(in_doc, router);
    }
}
