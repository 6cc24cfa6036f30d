//! One operation of the document, described by what its handler takes and answers.

use axum::http::Method;
use cloudo_core::auth::Permission;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Content, PathItem, Ref, RefOr, Required, SecurityRequirement};
use utoipa::{IntoParams, ToSchema};

use crate::api::views::ErrorBody;

/// Collected schemas: name and schema.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

pub struct Op {
    pub method: Method,
    /// The router's template (`{exec_id}`, `{*path}`).
    pub path: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: Option<&'static str>,
    params: Vec<Parameter>,
    body: Option<RequestBody>,
    responses: Vec<(String, Response)>,
    errors: Vec<u16>,
    /// Errors a browser reads: answered as a page (or, for a malformed request, JSON).
    page_errors: Vec<u16>,
    schemas: Schemas,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Op")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A reference to `T`'s schema, collecting it and what it refers to.
fn reference<T: ToSchema>(schemas: &mut Schemas) -> RefOr<Schema> {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn json(schema: RefOr<Schema>) -> Content {
    Content::new(Some(schema))
}

/// Why an error status comes back, for the ones every route may answer.
fn error_reason(code: u16) -> &'static str {
    match code {
        400 => "bad input (the message says what)",
        401 => "no key, or a key the server does not know",
        403 => "the key's role or scope does not allow it (the message names the role needed)",
        404 => "no such object (the message names it)",
        409 => "it conflicts with the object's state (already ended, already decided, exists)",
        413 => "the body is too large",
        415 => "the body is not of a type this route takes",
        429 => "too many requests from this client (Retry-After says when to retry)",
        503 => "the store or queue is unavailable (retry)",
        _ => "refused",
    }
}

impl Op {
    pub fn new(
        method: Method,
        path: &'static str,
        tag: &'static str,
        summary: &'static str,
    ) -> Self {
        let params = path_params(path);
        Self {
            method,
            path,
            tag,
            summary,
            description: None,
            params,
            body: None,
            responses: Vec::new(),
            errors: Vec::new(),
            page_errors: Vec::new(),
            schemas: Vec::new(),
        }
    }

    pub fn describe(mut self, d: &'static str) -> Self {
        self.description = Some(d);
        self
    }

    pub fn query<T: IntoParams>(mut self) -> Self {
        self.params
            .extend(T::into_params(|| Some(ParameterIn::Query)));
        self
    }

    pub fn header(mut self, name: &str, description: &str) -> Self {
        self.params.push(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        );
        self
    }

    /// A JSON body of type `T`.
    pub fn body<T: ToSchema>(mut self, required: bool, description: &str) -> Self {
        let schema = reference::<T>(&mut self.schemas);
        self.body = Some(
            RequestBodyBuilder::new()
                .description(Some(description))
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .content("application/json", json(schema))
                .build(),
        );
        self
    }

    /// A body in one of `types`, described in words (documents that are YAML or JSON, forms).
    pub fn raw_body(mut self, types: &[&str], description: &str) -> Self {
        let mut b = RequestBodyBuilder::new()
            .description(Some(description))
            .required(Some(Required::True));
        for t in types {
            b = b.content(
                *t,
                Content::new(Some(RefOr::T(Schema::Object(ObjectBuilder::new().build())))),
            );
        }
        self.body = Some(b.build());
        self
    }

    fn respond(mut self, code: u16, description: &str, content: Option<(&str, Content)>) -> Self {
        let mut r = ResponseBuilder::new().description(description);
        if let Some((t, c)) = content {
            r = r.content(t, c);
        }
        self.responses.push((code.to_string(), r.build()));
        self
    }

    /// A JSON answer of type `T`.
    pub fn answer<T: ToSchema>(mut self, code: u16, description: &str) -> Self {
        let schema = reference::<T>(&mut self.schemas);
        self.respond(code, description, Some(("application/json", json(schema))))
    }

    /// A JSON answer of type `A` or `B` (which one, the request decides).
    pub fn answer_either<A: ToSchema, B: ToSchema>(mut self, code: u16, description: &str) -> Self {
        let (a, b) = (
            reference::<A>(&mut self.schemas),
            reference::<B>(&mut self.schemas),
        );
        let either = utoipa::openapi::schema::AnyOfBuilder::new()
            .item(a)
            .item(b)
            .build();
        self.respond(
            code,
            description,
            Some(("application/json", json(RefOr::T(Schema::AnyOf(either))))),
        )
    }

    /// `{"items": [T], "next": cursor | null}`, newest first.
    pub fn page<T: ToSchema>(mut self, description: &str) -> Self {
        let item = reference::<T>(&mut self.schemas);
        let schema = ObjectBuilder::new()
            .property("items", ArrayBuilder::new().items(item))
            .required("items")
            .property(
                "next",
                ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                        Type::String,
                        Type::Null,
                    ]))
                    .description(Some("The cursor of the next page; null on the last.")),
            )
            .required("next");
        self.respond(
            200,
            description,
            Some((
                "application/json",
                json(RefOr::T(Schema::Object(schema.build()))),
            )),
        )
    }

    /// `{"items": [T]}`.
    pub fn list<T: ToSchema>(mut self, description: &str) -> Self {
        let item = reference::<T>(&mut self.schemas);
        let schema = ObjectBuilder::new()
            .property("items", ArrayBuilder::new().items(item))
            .required("items");
        self.respond(
            200,
            description,
            Some((
                "application/json",
                json(RefOr::T(Schema::Object(schema.build()))),
            )),
        )
    }

    /// An answer that is not JSON (a page, a stream, text), or has no body (`None`).
    pub fn answer_as(self, code: u16, content_type: Option<&str>, description: &str) -> Self {
        let content = content_type.map(|t| {
            (
                t,
                Content::new(Some(RefOr::T(Schema::Object(
                    ObjectBuilder::new().schema_type(Type::String).build(),
                )))),
            )
        });
        self.respond(code, description, content)
    }

    /// A server-sent event stream: each event has a name, an id, a retry delay and a JSON
    /// text as its data (OpenAPI 3.1 describes events as objects of these fields).
    pub fn events(self, code: u16, description: &str) -> Self {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let event = ObjectBuilder::new()
            .property("event", string())
            .property("id", string())
            .property("retry", ObjectBuilder::new().schema_type(Type::Integer))
            .property("data", string())
            .build();
        let content = Content::new(Some(RefOr::T(Schema::Object(event))));
        self.respond(code, description, Some(("text/event-stream", content)))
    }

    /// Error statuses (`{"error": {...}}`) this route answers besides the auth ones.
    pub fn errors(mut self, codes: &[u16]) -> Self {
        self.errors.extend_from_slice(codes);
        self
    }

    /// Error statuses of a route people open in a browser: a page, or the JSON error body
    /// when the request itself is malformed.
    pub fn page_errors(mut self, codes: &[u16]) -> Self {
        self.page_errors.extend_from_slice(codes);
        self
    }

    /// The OpenAPI path (`{*path}` is `{path}` there) and its item; the schemas it uses.
    pub fn into_item(
        mut self,
        perm: Permission,
        security: Vec<SecurityRequirement>,
    ) -> ((String, PathItem), Schemas) {
        let mut errors = self.errors.clone();
        errors.extend_from_slice(&self.page_errors);
        if perm != Permission::Public {
            errors.extend([401, 403]);
        }
        errors.sort_unstable();
        errors.dedup();
        let error = reference::<ErrorBody<'static>>(&mut self.schemas);
        for code in errors {
            let mut r = ResponseBuilder::new()
                .description(error_reason(code))
                .content("application/json", json(error.clone()));
            if self.page_errors.contains(&code) {
                r = r.content(
                    "text/html",
                    json(RefOr::T(Schema::Object(
                        ObjectBuilder::new().schema_type(Type::String).build(),
                    ))),
                );
            }
            self.responses.push((code.to_string(), r.build()));
        }
        let role = perm.describe();
        let description = match self.description {
            Some(d) => format!("{d}\n\nRole: {role}."),
            None => format!("Role: {role}."),
        };
        let mut op = OperationBuilder::new()
            .tag(self.tag)
            .summary(Some(self.summary))
            .description(Some(description))
            .operation_id(Some(operation_id(&self.method, self.path)))
            .request_body(self.body);
        for s in security {
            op = op.security(s);
        }
        for p in self.params {
            op = op.parameter(p);
        }
        for (code, r) in self.responses {
            op = op.response(code, r);
        }
        let op: Operation = op.build();
        let method = match self.method {
            Method::POST => HttpMethod::Post,
            Method::PUT => HttpMethod::Put,
            Method::DELETE => HttpMethod::Delete,
            _ => HttpMethod::Get,
        };
        let path = openapi_path(self.path);
        ((path, PathItem::new(method, op)), self.schemas)
    }
}

/// The router's template as OpenAPI writes it: `{*path}` is `{path}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

fn path_params(path: &str) -> Vec<Parameter> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let (name, rest) = match name.strip_prefix('*') {
                Some(n) => (n, " (the rest of the path, slashes included)"),
                None => (name, ""),
            };
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(format!("{}{rest}", name.replace('_', " "))))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build()
        })
        .collect()
}

/// `get_api_executions_exec_id`: unique per method and path.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_lowercase();
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c.to_ascii_lowercase());
        } else if !id.ends_with('_') {
            id.push('_');
        }
    }
    id.trim_end_matches('_').to_string()
}
