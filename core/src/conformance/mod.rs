//! Conformance suites for the ports: one set of behaviour every adapter must have.
//!
//! Each function takes a fresh adapter and panics on the first deviation; adapter crates
//! call them from their own tests (the embedded adapters in `core/tests/conformance.rs`, the
//! Azure ones against Azurite), so all adapters are held to the same tests.

pub mod bodies;
pub mod queue;
pub mod store;
