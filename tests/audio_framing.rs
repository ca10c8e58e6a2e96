//! Window cutting: the PyTorch SEGAN tail rule, tail padding, and the
//! split/join pair used for enhancement.

use segan::audio::framing::{
    frame_windows, join_windows, split_padded, window_starts, TailMode, HOP, WINDOW,
};
use segan::audio::AudioError;

fn ramp(len: usize) -> Vec<f32> {
    (0..len).map(|i| i as f32).collect()
}

#[test]
fn constants_match_reference() {
    assert_eq!(WINDOW, 16384);
    assert_eq!(HOP, 8192);
}

#[test]
fn drop_keeps_windows_ending_before_end() {
    // Kept only if start + WINDOW < len.
    let cases: [(usize, Vec<usize>); 7] = [
        (0, vec![]),
        (16_383, vec![]),
        (16_384, vec![]),
        (16_385, vec![0]),
        (24_576, vec![0]),
        (24_577, vec![0, 8_192]),
        (50_000, vec![0, 8_192, 16_384, 24_576, 32_768]),
    ];
    for (len, expected) in cases {
        assert_eq!(
            window_starts(len, WINDOW, HOP, TailMode::Drop).unwrap(),
            expected,
            "len {len}"
        );
    }
}

#[test]
fn drop_matches_python_range_rule() {
    // The reference loops `for end in range(window, len, hop)`.
    for len in [0usize, 5, 16_384, 16_385, 40_000, 40_961, 100_000] {
        let mut expected = Vec::new();
        let mut end = WINDOW;
        while end < len {
            expected.push(end - WINDOW);
            end += HOP;
        }
        assert_eq!(
            window_starts(len, WINDOW, HOP, TailMode::Drop).unwrap(),
            expected,
            "len {len}"
        );
    }
}

#[test]
fn pad_covers_every_sample() {
    let cases: [(usize, Vec<usize>); 6] = [
        (0, vec![]),
        (1, vec![0]),
        (16_384, vec![0]),
        (16_385, vec![0, 8_192]),
        (24_576, vec![0, 8_192]),
        (24_577, vec![0, 8_192, 16_384]),
    ];
    for (len, expected) in cases {
        assert_eq!(
            window_starts(len, WINDOW, HOP, TailMode::Pad).unwrap(),
            expected,
            "len {len}"
        );
    }
}

#[test]
fn frames_hold_the_right_samples() {
    let signal = ramp(30_000);
    let windows = frame_windows(&signal, WINDOW, HOP, TailMode::Drop).unwrap();
    assert_eq!(windows.len(), 2);
    assert_eq!(windows[0], signal[..WINDOW].to_vec());
    assert_eq!(windows[1], signal[HOP..HOP + WINDOW].to_vec());
}

#[test]
fn padded_last_frame_is_zero_filled() {
    let signal = ramp(20_000);
    let windows = frame_windows(&signal, WINDOW, HOP, TailMode::Pad).unwrap();
    assert_eq!(windows.len(), 2);
    let last = &windows[1];
    assert_eq!(last.len(), WINDOW);
    assert_eq!(&last[..20_000 - HOP], &signal[HOP..]);
    assert!(last[20_000 - HOP..].iter().all(|&v| v == 0.0));
}

#[test]
fn small_window_and_hop() {
    let windows = frame_windows(&ramp(10), 4, 3, TailMode::Pad).unwrap();
    assert_eq!(
        windows,
        vec![
            vec![0.0, 1.0, 2.0, 3.0],
            vec![3.0, 4.0, 5.0, 6.0],
            vec![6.0, 7.0, 8.0, 9.0],
        ]
    );
    let dropped = frame_windows(&ramp(10), 4, 3, TailMode::Drop).unwrap();
    assert_eq!(
        dropped.len(),
        2,
        "the window ending exactly at the end is dropped"
    );
}

#[test]
fn zero_window_or_hop_is_error() {
    let zero_window = window_starts(100, 0, 1, TailMode::Drop);
    assert!(matches!(zero_window, Err(AudioError::InvalidArgument(_))));
    let zero_hop = frame_windows(&[0.0; 10], 4, 0, TailMode::Pad);
    assert!(matches!(zero_hop, Err(AudioError::InvalidArgument(_))));
}

#[test]
fn reference_enhancement_drops_tail() {
    // Hop equal to the window: 32768 samples give one window, not two.
    let windows = frame_windows(&ramp(32_768), WINDOW, WINDOW, TailMode::Drop).unwrap();
    assert_eq!(windows.len(), 1);
}

#[test]
fn split_and_join_round_trip() {
    for len in [1usize, 100, 16_383, 16_384, 16_385, 50_000] {
        let signal = ramp(len);
        let split = split_padded(&signal, WINDOW).unwrap();
        assert_eq!(split.original_len, len);
        assert_eq!(split.windows.len(), len.div_ceil(WINDOW), "len {len}");
        assert!(split.windows.iter().all(|w| w.len() == WINDOW));
        let joined = join_windows(&split.windows, split.original_len).unwrap();
        assert_eq!(joined, signal, "len {len}");
    }
}

#[test]
fn short_input_gives_one_padded_window() {
    let split = split_padded(&[0.5, -0.5], WINDOW).unwrap();
    assert_eq!(split.windows.len(), 1);
    assert_eq!(&split.windows[0][..2], &[0.5, -0.5]);
    assert!(split.windows[0][2..].iter().all(|&v| v == 0.0));
}

#[test]
fn split_rejects_empty_signal() {
    let result = split_padded(&[], WINDOW);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn join_rejects_unequal_windows() {
    let result = join_windows(&[vec![0.0; 4], vec![0.0; 3]], 7);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}

#[test]
fn join_rejects_too_few_samples() {
    let result = join_windows(&[vec![0.0; 4]], 5);
    assert!(
        matches!(result, Err(AudioError::InvalidArgument(_))),
        "{result:?}"
    );
}
