//! Records the git commit for `skiff --version`, and relinks when the
//! function order the Makefile hands the linker changes (hack/order/gen).
//! On x86_64 musl, links skiff's own `memcpy` in (src/memcpy.rs); on musl,
//! its own `open` (src/open.rs).
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SKIFF_COMMIT={commit}");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    println!("cargo:rerun-if-changed=../hack/order/skiff.order");
    let cfg = |k: &str| std::env::var(k).unwrap_or_default();
    if cfg("CARGO_CFG_TARGET_ARCH") == "x86_64" && cfg("CARGO_CFG_TARGET_ENV") == "musl" {
        println!("cargo:rustc-link-arg-bins=-Wl,--wrap=memcpy");
    }
    if cfg("CARGO_CFG_TARGET_ENV") == "musl" {
        println!("cargo:rustc-link-arg-bins=-Wl,--wrap=open");
    }
}
