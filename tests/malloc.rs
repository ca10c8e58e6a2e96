//! `segan::malloc::set_steady_thresholds`, in a test binary of its own
//! without the test harness: the function must run before any other thread
//! exists, and the harness starts threads.

fn main() {
    let on_glibc64 = cfg!(all(
        target_os = "linux",
        target_env = "gnu",
        target_pointer_width = "64"
    ));
    // Settings the environment of this run already has also stop it.
    let preset = ["MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());

    // A user's own malloc setting is left alone.
    std::env::set_var("MALLOC_TRIM_THRESHOLD_", "1048576");
    // SAFETY: this is the only thread of the process.
    let applied_with_user_setting = unsafe { segan::malloc::set_steady_thresholds() };
    assert!(
        !applied_with_user_setting,
        "the thresholds overrode MALLOC_TRIM_THRESHOLD_"
    );

    std::env::remove_var("MALLOC_TRIM_THRESHOLD_");
    // SAFETY: as above.
    let applied = unsafe { segan::malloc::set_steady_thresholds() };
    assert_eq!(
        applied,
        on_glibc64 && !preset,
        "glibc did not accept the thresholds"
    );

    // Blocks up to the threshold still allocate and free.
    let block = vec![1u8; segan::malloc::MMAP_THRESHOLD / 2];
    assert_eq!(
        block.iter().map(|&b| b as usize).sum::<usize>(),
        block.len()
    );
    println!("malloc thresholds: ok (applied: {applied})");
}
