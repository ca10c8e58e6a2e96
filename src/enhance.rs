//! Enhancing recordings with a trained generator.
