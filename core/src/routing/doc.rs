//! How the routing types with their own serde appear in the OpenAPI document.

use super::{ConditionFilter, Matcher, SeverityRange};

/// A value, a list of matchers (any of them), or an object `{glob}`, `{regex}`, `{prefix}`,
/// ... (docs/alerts.md); recursive, so described loosely.
impl utoipa::PartialSchema for Matcher {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::Schema::AnyOf(
            utoipa::openapi::schema::AnyOfBuilder::new()
                .item(
                    utoipa::openapi::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String),
                )
                .item(utoipa::openapi::schema::ArrayBuilder::new())
                .item(utoipa::openapi::ObjectBuilder::new())
                .description(Some(
                    "a value, a list of matchers, or {glob}, {regex}, ... (docs/alerts.md)",
                ))
                .build(),
        )
        .into()
    }
}

impl utoipa::ToSchema for Matcher {}

/// A string in the document: `Sev0`..`Sev4`, or a range such as `Sev0-Sev2`.
impl utoipa::PartialSchema for SeverityRange {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema("Sev0..Sev4, or a range such as Sev0-Sev2")
    }
}

impl utoipa::ToSchema for SeverityRange {}

/// A string in the document: `Fired`, `Resolved` or `any`.
impl utoipa::PartialSchema for ConditionFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_schema("Fired, Resolved or any")
    }
}

impl utoipa::ToSchema for ConditionFilter {}

fn string_schema(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .into()
}
