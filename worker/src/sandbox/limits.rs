//! Resource limits of a run: what a schema asks for, filled in with the worker's defaults.
//! Every sandbox applies the same resolved limits (bwrap and process through cgroups,
//! docker through the container's host config).

/// Limits as applied (worker defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedLimits {
    pub memory_mb: u64,
    pub pids: u64,
    pub cpu: f64,
}

/// The schema's limits, each one it does not set taken from the worker's defaults.
pub fn resolve_limits(
    wanted: &cloudo_core::schema::Limits,
    defaults: &ResolvedLimits,
) -> ResolvedLimits {
    ResolvedLimits {
        memory_mb: wanted.memory_mb.unwrap_or(defaults.memory_mb),
        pids: wanted.pids.unwrap_or(defaults.pids),
        cpu: wanted.cpu.unwrap_or(defaults.cpu),
    }
}
