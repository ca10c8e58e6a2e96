//! Gives every binary, test and example of the crate an rpath to the libtorch
//! lib dir, and links `libtorch_cuda` when the install has it.
//!
//! Without the rpath the executables fail to start with `libtorch_cpu.so:
//! cannot open shared object file`. Without `--no-as-needed`, the linker
//! drops `libtorch_cuda.so` because no symbol of it is referenced directly,
//! and `tch::Cuda::is_available()` then reports false even on a GPU machine.
//!
//! It also compiles src/precision.cpp, the TF32 switches of libtorch that
//! tch does not expose, against the same libtorch headers.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");

    let Some(lib_dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        panic!("torch-sys did not report its libtorch lib dir (DEP_TCH_LIBTORCH_LIB); run scripts/setup.sh");
    };
    let lib_dir = PathBuf::from(lib_dir);
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);

    compile_precision_shim(&lib_dir);

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

/// Compiles src/precision.cpp with the include dirs and C++ ABI that
/// torch-sys uses for its own wrapper.
fn compile_precision_shim(lib_dir: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/precision.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = lib_dir.parent().unwrap_or(lib_dir);
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .file("src/precision.cpp")
        .include(root.join("include"))
        .include(root.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .warnings(false)
        .compile("segan_precision");
}
