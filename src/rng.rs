//! Serializing use of libtorch's global random generator.
//!
//! `tch::manual_seed` seeds one generator shared by the whole process, so two
//! threads that seed and draw at the same time interleave their draws and
//! neither gets PyTorch's sequence. Code that needs a seeded sequence
//! (seeded initialization, replayed dropout masks) holds this lock from the
//! seed to the last draw.

use std::sync::{Mutex, MutexGuard};

static GLOBAL_GENERATOR: Mutex<()> = Mutex::new(());

/// Locks the global generator for the caller; poisoning is ignored because
/// the guarded state is libtorch's, not Rust data.
pub fn lock_global_generator() -> MutexGuard<'static, ()> {
    GLOBAL_GENERATOR
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
