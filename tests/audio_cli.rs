//! The `segan prepare` arguments and exit rules, compiled from the CLI
//! source file so they are checked without the binary.

#[path = "../src/cli/prepare.rs"]
mod prepare;

use std::path::Path;

use clap::Parser;

use prepare::{run, PrepareArgs};
use segan::audio::wav::write_wav_f32;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: PrepareArgs,
}

fn parse(arguments: &[&str]) -> Result<PrepareArgs, clap::Error> {
    let mut full = vec!["segan-prepare"];
    full.extend_from_slice(arguments);
    Cli::try_parse_from(full).map(|cli| cli.args)
}

fn tone(len: usize) -> Vec<f32> {
    (0..len).map(|n| (n as f32 * 0.01).sin() * 0.3).collect()
}

fn write_pair(clean: &Path, noisy: &Path, name: &str, clean_len: usize, noisy_len: usize) {
    write_wav_f32(clean.join(name), &tone(clean_len), 16_000).unwrap();
    write_wav_f32(noisy.join(name), &tone(noisy_len), 16_000).unwrap();
}

#[test]
fn argument_definitions_are_consistent() {
    use clap::CommandFactory;
    // Panics on clap configuration errors such as a group naming an unknown argument.
    Cli::command().debug_assert();
}

#[test]
fn requires_exactly_one_input() {
    assert!(parse(&["--out", "x"]).is_err(), "no input");
    assert!(
        parse(&["--clean", "c", "--out", "x"]).is_err(),
        "--clean without --noisy"
    );
    assert!(
        parse(&["--noisy", "n", "--out", "x"]).is_err(),
        "--noisy without --clean"
    );
    assert!(
        parse(&["--vctk", "v", "--clean", "c", "--noisy", "n", "--out", "x"]).is_err(),
        "two inputs"
    );
    assert!(parse(&["--vctk", "v"]).is_err(), "no --out");
    assert!(
        parse(&["--vctk", "v", "--seed", "3", "--out", "x"]).is_err(),
        "--seed without --speech"
    );
}

#[test]
fn parses_options() {
    let args = parse(&[
        "--clean",
        "c",
        "--noisy",
        "n",
        "-o",
        "x",
        "--pad-tail",
        "--allow-skipped",
        "--no-progress",
    ])
    .unwrap();
    assert_eq!(args.clean.as_deref(), Some(Path::new("c")));
    assert_eq!(args.noisy.as_deref(), Some(Path::new("n")));
    assert_eq!(args.out, Path::new("x"));
    assert!(args.pad_tail);
    assert!(args.allow_skipped);
    assert!(args.no_progress);

    let speech = parse(&["--speech", "s", "--out", "x", "--seed", "7"]).unwrap();
    assert_eq!(speech.seed, Some(7));
    assert!(!speech.pad_tail);
}

#[test]
fn skipped_pairs_fail_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, noisy) = (dir.path().join("clean"), dir.path().join("noisy"));
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::create_dir_all(&noisy).unwrap();
    write_pair(&clean, &noisy, "good.wav", 20_000, 20_000);
    write_pair(&clean, &noisy, "bad.wav", 20_000, 19_000);
    let out = dir.path().join("out");
    let base = [
        "--clean",
        clean.to_str().unwrap(),
        "--noisy",
        noisy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ];

    let error = run(parse(&base).unwrap()).unwrap_err();
    assert!(
        error.to_string().contains("1 pair was skipped"),
        "{error:#}"
    );
    assert!(
        out.join("good.wav_0.npy").exists(),
        "the good pair is written before failing"
    );

    let mut allowed = base.to_vec();
    allowed.push("--allow-skipped");
    run(parse(&allowed).unwrap()).unwrap();
}

#[test]
fn no_window_is_error() {
    let dir = tempfile::tempdir().unwrap();
    let (clean, noisy) = (dir.path().join("clean"), dir.path().join("noisy"));
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::create_dir_all(&noisy).unwrap();
    write_pair(&clean, &noisy, "short.wav", 16_384, 16_384);
    let out = dir.path().join("out");
    let args = parse(&[
        "--clean",
        clean.to_str().unwrap(),
        "--noisy",
        noisy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .unwrap();
    let error = run(args).unwrap_err();
    assert!(
        error.to_string().contains("no window was written"),
        "{error:#}"
    );

    let padded = parse(&[
        "--clean",
        clean.to_str().unwrap(),
        "--noisy",
        noisy.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
        "--pad-tail",
    ])
    .unwrap();
    run(padded).unwrap();
    assert!(out.join("short.wav_0.npy").exists());
}

#[test]
fn speech_mode_builds_set_and_windows() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech");
    std::fs::create_dir_all(&speech).unwrap();
    for i in 0..3 {
        // About 1.5 s each at 48 kHz.
        write_wav_f32(
            speech.join(format!("v{i}.wav")),
            &tone(72_000 + i * 100),
            48_000,
        )
        .unwrap();
    }
    let out = dir.path().join("data");
    let args = parse(&[
        "--speech",
        speech.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-progress",
    ])
    .unwrap();
    run(args.clone()).unwrap();
    assert!(out.join("test/noisy.wav").exists());
    let windows = std::fs::read_dir(out.join("train")).unwrap().count();
    // v0 and v1 form the test pair. v2 alone is the one training utterance
    // (24067 samples at 16 kHz, so one window), mixed with white noise at 4
    // SNRs. It gets no babble because no other training recording is left.
    assert_eq!(windows, 4);
    // A second run reuses the set.
    run(args).unwrap();
}
