//! The built executables find libtorch without LD_LIBRARY_PATH and keep
//! libtorch_cuda linked when the install has it.

use std::path::Path;
use std::process::Command;

fn dynamic_section(binary: &Path) -> String {
    let output = Command::new("readelf")
        .arg("-d")
        .arg(binary)
        .output()
        .expect("readelf (binutils) must be installed to run this test");
    assert!(
        output.status.success(),
        "readelf -d {} failed",
        binary.display()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn libtorch_lib() -> &'static str {
    env!("SEGAN_LIBTORCH_LIB")
}

fn check(binary: &Path) {
    let section = dynamic_section(binary);
    let rpath_line = section
        .lines()
        .find(|line| line.contains("(RUNPATH)") || line.contains("(RPATH)"))
        .unwrap_or_else(|| panic!("{} has no RUNPATH or RPATH", binary.display()));
    assert!(
        rpath_line.contains(libtorch_lib()),
        "{}: rpath {rpath_line:?} lacks {}",
        binary.display(),
        libtorch_lib()
    );

    let has_cuda_lib = Path::new(libtorch_lib()).join("libtorch_cuda.so").exists();
    assert_eq!(env!("SEGAN_LIBTORCH_HAS_CUDA") == "1", has_cuda_lib);
    if has_cuda_lib {
        assert!(
            section.contains("[libtorch_cuda.so]"),
            "{} does not need libtorch_cuda.so, so CUDA would never be detected",
            binary.display()
        );
    }
}

#[test]
fn test_executable_has_rpath_and_cuda_library() {
    check(&std::env::current_exe().unwrap());
}

#[test]
fn cli_binary_has_rpath_and_cuda_library() {
    check(Path::new(env!("CARGO_BIN_EXE_segan")));
}

#[test]
fn cli_binary_starts_without_library_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_segan"))
        .arg("--version")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "segan --version failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
