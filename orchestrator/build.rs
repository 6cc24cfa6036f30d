//! Link flags for the binaries.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    // DT_RELR (glibc 2.36+; the linker leaves it out for an older glibc): the binary's
    // ~54,000 relative relocations as a bitmap of a few KB instead of a 1.3 MB table the
    // loader reads, page by page, at every start (docs/benchmarks.md, idle RSS).
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
