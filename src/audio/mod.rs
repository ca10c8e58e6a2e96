//! WAV I/O, resampling, framing into windows, pre- and de-emphasis, and
//! speech quality measures.
