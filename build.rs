//! Gives every binary, test and example of the crate an rpath to the libtorch
//! lib dir, and links `libtorch_cuda` when the install has it.
//!
//! Without the rpath the executables fail to start with `libtorch_cpu.so:
//! cannot open shared object file`. Without `--no-as-needed`, the linker
//! drops `libtorch_cuda.so` because no symbol of it is referenced directly,
//! and `tch::Cuda::is_available()` then reports false even on a GPU machine.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");

    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=torch-sys did not report its lib dir; no rpath is set");
        return;
    };
    let lib_dir = PathBuf::from(lib_dir);
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);

    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    println!("cargo:rustc-env=SEGAN_LIBTORCH_LIB={}", lib_dir.display());

    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-L{}", lib_dir.display());
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-env=SEGAN_LIBTORCH_HAS_CUDA=1");
    } else {
        println!("cargo:rustc-env=SEGAN_LIBTORCH_HAS_CUDA=0");
    }
}
