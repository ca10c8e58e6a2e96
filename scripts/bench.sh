#!/usr/bin/env bash
# Benchmarks the Rust port against the PyTorch reference on the CPU, in one
# run, and prints a Markdown report with the ratios.
#
#   scripts/bench.sh                       # everything, threads = nproc
#   BENCH_SECTIONS="vbn" scripts/bench.sh  # only the VBN benchmark
#
# Sections: vbn (VirtualBatchNorm1d forward+backward), net (discriminator and
# generator steps, with peak memory) and enhance (a 30-second recording with
# `segan enhance` against the PyTorch window-by-window loop). The enhance
# section is skipped, with a message, when `segan enhance --help` fails or
# lacks a flag that the script passes.
#
# Every measurement runs in its own process, so that each peak resident set
# size belongs to one case. Rounds interleave the implementations, so that
# both sides see similar machine load.
#
# Settings, as environment variables:
#   BENCH_THREADS        intra-op threads on both sides (default: nproc)
#   BENCH_SECTIONS       sections to run (default: "vbn net enhance")
#   BENCH_VBN_ROUNDS     rounds of the VBN benchmark (default: 5)
#   BENCH_NET_ROUNDS     rounds of the network benchmark (default: 3)
#   BENCH_ENHANCE_ROUNDS rounds of the enhancement benchmark (default: 2)
#   BENCH_ENHANCE_SECONDS length of the test recording (default: 30)
#
# Output: target/bench/results.jsonl (one JSON line per process) and
# target/bench/report.md, which is also printed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

threads=${BENCH_THREADS:-$(nproc)}
sections=${BENCH_SECTIONS:-"vbn net enhance"}
vbn_rounds=${BENCH_VBN_ROUNDS:-5}
net_rounds=${BENCH_NET_ROUNDS:-3}
enhance_rounds=${BENCH_ENHANCE_ROUNDS:-2}
enhance_seconds=${BENCH_ENHANCE_SECONDS:-30}

python=.venv/bin/python
reference_bench=scripts/bench_reference.py
rust_bench=target/release/examples/bench_segan
segan=target/release/segan
out_dir=target/bench
results=$out_dir/results.jsonl

# libtorch's OpenMP pool reads these at start-up; the timing programs also
# call set_num_threads with the same count.
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

command_line="scripts/bench.sh"
for name in $(compgen -e | grep '^BENCH_' || true); do
    command_line="$name=${!name} $command_line"
done

if [[ ! -x $python ]]; then
    echo "bench: $python not found; run scripts/setup.sh first" >&2
    exit 1
fi

echo "bench: building the release binaries" >&2
cargo build --release --example bench_segan --bin segan >&2

mkdir -p "$out_dir"
: >"$results"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Runs one timing process and appends its JSON line to the results.
measure() {
    local line
    echo "bench: $*" >&2
    line=$("$@")
    echo "$line" >>"$results"
    echo "  ${line:0:160}…" >&2
}

section_enabled() {
    [[ " $sections " == *" $1 "* ]]
}

# ---------------------------------------------------------------------------
# VirtualBatchNorm1d: reference pass on a reference batch, mixed pass on the
# input, backward. Each entry is "shape warmup iterations threads". One step
# of the small shape takes a few milliseconds, so on a loaded machine its
# multi-threaded time mostly measures how long the OS takes to reschedule an
# OpenMP worker. The single-threaded run shows the per-operation overhead.
vbn_cases=("50,32,8192 2 5 $threads" "8,2048,8 20 200 $threads")
if ((threads != 1)); then
    vbn_cases+=("8,2048,8 20 200 1")
fi
# Rust and PyTorch alternate, so that the PyTorch reference runs right next
# to the rows it is compared with. "fused-stable" is the Fused formula with
# two-pass variances (`VbnConfig::stable`).
vbn_implementations=(rust:reference torch:reference rust:fused torch:batch_norm rust:fused-stable)

# Runs one VBN measurement: $1 is an entry of vbn_implementations, the rest
# are the shape and timing options.
measure_vbn() {
    local implementation=$1 shape=$2
    shift 2
    case $implementation in
        rust:reference) measure "$rust_bench" "$@" vbn --shape "$shape" --formula reference ;;
        rust:fused) measure "$rust_bench" "$@" vbn --shape "$shape" --formula fused ;;
        rust:fused-stable) measure "$rust_bench" "$@" vbn --shape "$shape" --formula fused --stable ;;
        torch:*) measure "$python" "$reference_bench" vbn "$@" --shape "$shape" --impl "${implementation#torch:}" ;;
    esac
}

if section_enabled vbn; then
    for round in $(seq "$vbn_rounds"); do
        echo "bench: VBN round $round of $vbn_rounds" >&2
        for entry in "${vbn_cases[@]}"; do
            read -r shape warmup iters case_threads <<<"$entry"
            for implementation in "${vbn_implementations[@]}"; do
                measure_vbn "$implementation" "$shape" --threads "$case_threads" \
                    --warmup "$warmup" --iters "$iters"
            done
        done
    done
fi

# ---------------------------------------------------------------------------
# Networks: one training-style step of each, batch 8 (reference batch 8), at
# the chosen thread count and, when that is not 1, single-threaded too: with
# one thread a process loses less time when other programs take a core.
net_threads=("$threads")
if ((threads != 1)); then
    net_threads+=(1)
fi
if section_enabled net; then
    for round in $(seq "$net_rounds"); do
        echo "bench: network round $round of $net_rounds" >&2
        for case_threads in "${net_threads[@]}"; do
            timing=(--threads "$case_threads" --warmup 1 --iters 3)
            measure "$rust_bench" "${timing[@]}" discriminator --batch 8 --ref-batch 8 --formula reference
            measure "$python" "$reference_bench" discriminator "${timing[@]}" --batch 8 --ref-batch 8
            measure "$rust_bench" "${timing[@]}" discriminator --batch 8 --ref-batch 8 --formula fused
            measure "$rust_bench" "${timing[@]}" discriminator --batch 8 --ref-batch 8 --formula reference --default-malloc
            measure "$rust_bench" "${timing[@]}" generator --batch 8
            measure "$python" "$reference_bench" generator "${timing[@]}" --batch 8
            measure "$rust_bench" "${timing[@]}" generator --batch 8 --default-malloc
        done
    done
fi

# ---------------------------------------------------------------------------
# Enhancement of a whole recording, end to end: process start, loading the
# checkpoint and the WAV, every window, writing the output. Wall time, CPU
# time and peak RSS come from /usr/bin/time. `segan enhance` runs with the
# reference's behaviour (tail dropped, the reference de-emphasis, the same
# seed), so both sides enhance the same windows and their outputs can be
# compared. It runs once with its default batch of windows per generator
# call and once window by window, like the PyTorch loop.
enhance_wav=$out_dir/noisy_${enhance_seconds}s.wav
enhance_checkpoint=$out_dir/generator_seed0.pt
enhance_check=$out_dir/enhance_check.md
rust_enhance_args=(--checkpoint "$enhance_checkpoint" --seed 0 --device cpu
    --drop-tail --reference-de-emphasis)

# Appends a record for one enhancement process from /usr/bin/time's output.
record_enhance() {
    local impl=$1 time_file=$2 seconds kilobytes user system
    read -r seconds kilobytes user system <"$time_file"
    printf '{"case": "enhance", "impl": "%s", "details": {"seconds": %s}, "threads": %s, "warmup": 0, "times_s": [%s], "cpu_times_s": [%s], "rss_setup_kb": null, "peak_rss_kb": %s}\n' \
        "$impl" "$enhance_seconds" "$threads" "$seconds" "$(awk -v user_s="$user" -v system_s="$system" 'BEGIN { print user_s + system_s }')" "$kilobytes" >>"$results"
    echo "  $impl: $seconds s, peak RSS $kilobytes kB" >&2
}

# Prints why the enhancement benchmark cannot run, or nothing when it can.
enhance_skip_reason() {
    local help flag
    if ! help=$("$segan" enhance --help 2>&1); then
        echo "\`segan enhance --help\` failed, so the subcommand is not available"
        return
    fi
    for flag in "${rust_enhance_args[@]}" --batch --out; do
        if [[ $flag == --* && $help != *"$flag"* ]]; then
            echo "\`segan enhance --help\` does not list $flag; update rust_enhance_args in scripts/bench.sh"
            return
        fi
    done
}

: >"$enhance_check"
if section_enabled enhance; then
    skip_reason=$(enhance_skip_reason)
    if [[ -n $skip_reason ]]; then
        echo "bench: enhancement benchmark skipped: $skip_reason" >&2
        echo "Enhancement benchmark skipped: $skip_reason." >"$enhance_check"
    else
        "$python" "$reference_bench" make-inputs --wav "$enhance_wav" \
            --generator "$enhance_checkpoint" --seconds "$enhance_seconds" --seed 0
        time_file=$out_dir/enhance_time.txt
        for round in $(seq "$enhance_rounds"); do
            echo "bench: enhancement round $round of $enhance_rounds" >&2
            for batch in 16 1; do
                /usr/bin/time -f '%e %M %U %S' -o "$time_file" "$segan" enhance "${rust_enhance_args[@]}" \
                    --batch "$batch" --out "$out_dir/enhanced_rust_batch$batch.wav" "$enhance_wav" >&2
                record_enhance "rust-batch$batch" "$time_file"
            done
            /usr/bin/time -f '%e %M %U %S' -o "$time_file" "$python" "$reference_bench" enhance \
                --generator "$enhance_checkpoint" --input "$enhance_wav" \
                --output "$out_dir/enhanced_torch.wav" --seed 0 --threads "$threads" >&2
            record_enhance torch-reference "$time_file"
        done
        "$python" "$reference_bench" compare-wav "$out_dir/enhanced_torch.wav" \
            "$out_dir/enhanced_rust_batch1.wav" "$out_dir/enhanced_rust_batch16.wav" >"$enhance_check"
        cat "$enhance_check" >&2
    fi
fi

# ---------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
"$python" "$reference_bench" report --results "$results" --command "$command_line" \
    --threads "$threads" --load-before "$load_before" --load-after "$load_after" \
    --extra "$enhance_check" --output "$out_dir/report.md"
