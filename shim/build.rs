//! Relinks the shim when the function order the Makefile hands the linker
//! changes (hack/order/gen).
fn main() {
    println!("cargo:rerun-if-changed=../hack/order/shim.order");
}
