//! The default build must compile no C: `cargo tree -e normal,build` of the workspace may not
//! contain a crate that drives a native toolchain or links a native library.

use std::process::Command;

/// Crates that invoke a C/C++ toolchain or generate native bindings. Every crate that compiles C
/// build-depends on one of the first four; the rest are known offenders named for clarity.
/// (`-sys` crates alone are not the test: `linux-raw-sys` is pure Rust syscall tables.)
const NATIVE_BUILDERS: &[&str] = &[
    "cc",
    "cmake",
    "bindgen",
    "pkg-config",
    "vcpkg",
    "autocfg-c",
    "psm",
    "alloca",
    "onig_sys",
    "simsimd",
];

#[test]
fn default_workspace_build_compiles_no_native_code() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "tree",
            "--workspace",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--manifest-path",
            manifest,
        ])
        .output()
        .expect("cargo tree runs");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.len() > 10, "cargo tree printed too little:\n{tree}");
    let offenders: Vec<&str> =
        crates.iter().copied().filter(|c| NATIVE_BUILDERS.contains(c)).collect();
    assert!(offenders.is_empty(), "native-code crates in the default build: {offenders:?}");
}
