//! The SEGAN training loop.
