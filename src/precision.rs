//! TF32 switches of libtorch, the equivalents of PyTorch's
//! `torch.backends.cudnn.allow_tf32` and `torch.backends.cuda.matmul.allow_tf32`.
//!
//! On Ampere and later GPUs, libtorch runs float32 cuDNN convolutions in
//! TF32 by default. TF32 rounds the inputs to a 10-bit mantissa, so results
//! move by roughly 1e-3 relative, more than the parity tolerances allow. The
//! CUDA fixtures are exported with TF32 off, and the CUDA parity checks turn
//! it off too with [`disable_tf32`]. tch 0.26 does not expose these switches,
//! so src/precision.cpp calls libtorch's global context directly.
//!
//! NOTE: the switches are tested on the CPU build only, where they read back
//! what was written. The CUDA parity cases have not yet run on a GPU.

use anyhow::{bail, Result};

extern "C" {
    fn segan_set_allow_tf32(cudnn: bool, cublas: bool) -> i32;
    fn segan_allow_tf32(cudnn: *mut bool, cublas: *mut bool) -> i32;
}

/// State of libtorch's two TF32 switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tf32 {
    /// TF32 in cuDNN convolutions; libtorch's default is on.
    pub cudnn: bool,
    /// TF32 in cuBLAS matrix products; libtorch's default is off.
    pub cublas: bool,
}

/// Returns the current TF32 switches of the process.
pub fn tf32() -> Result<Tf32> {
    let (mut cudnn, mut cublas) = (false, false);
    // SAFETY: both pointers are valid for writes for the whole call, and the
    // shim catches every C++ exception.
    let status = unsafe { segan_allow_tf32(&mut cudnn, &mut cublas) };
    if status != 0 {
        bail!("libtorch failed to report its TF32 settings");
    }
    Ok(Tf32 { cudnn, cublas })
}

/// Sets the TF32 switches for the whole process, like assigning
/// `torch.backends.cudnn.allow_tf32` and `torch.backends.cuda.matmul.allow_tf32`.
pub fn set_tf32(settings: Tf32) -> Result<()> {
    // SAFETY: the shim takes plain values and catches every C++ exception.
    let status = unsafe { segan_set_allow_tf32(settings.cudnn, settings.cublas) };
    if status != 0 {
        bail!("libtorch failed to set TF32 to {settings:?}");
    }
    Ok(())
}

/// Turns TF32 off until the returned guard is dropped, which restores the
/// previous settings. The settings are process-wide, so other threads see
/// them too.
pub fn disable_tf32() -> Result<Tf32Guard> {
    let previous = tf32()?;
    set_tf32(Tf32 {
        cudnn: false,
        cublas: false,
    })?;
    Ok(Tf32Guard { previous })
}

/// Restores the TF32 settings that [`disable_tf32`] found.
#[derive(Debug)]
#[must_use = "TF32 is restored when the guard is dropped"]
pub struct Tf32Guard {
    previous: Tf32,
}

impl Drop for Tf32Guard {
    fn drop(&mut self) {
        if let Err(error) = set_tf32(self.previous) {
            log::warn!(
                "could not restore the TF32 settings {:?}: {error:#}",
                self.previous
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, because the settings are process-wide and tests run in
    // parallel threads.
    #[test]
    fn tf32_defaults_and_guard() {
        // PyTorch starts with cudnn.allow_tf32 = True and
        // cuda.matmul.allow_tf32 = False.
        let before = tf32().unwrap();
        assert!(before.cudnn, "cuDNN TF32 is off at start");
        assert!(!before.cublas, "cuBLAS TF32 is on at start");
        {
            let _guard = disable_tf32().unwrap();
            let after = tf32().unwrap();
            assert!(!after.cudnn, "cuDNN TF32 still on inside the guard");
            assert!(!after.cublas, "cuBLAS TF32 on inside the guard");
        }
        assert_eq!(tf32().unwrap(), before, "the guard did not restore");
    }
}
