//! Feeds arbitrary bytes to the checkpoint reader, which detects the zip,
//! legacy and safetensors formats from the content. Any panic, crash,
//! timeout or memory blow-up is a bug; errors are the expected outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = segan::checkpoint::load_bytes(data);
});
