"""PyTorch side of scripts/bench.sh, and the report that compares both sides.

Subcommands:
  vbn            time VirtualBatchNorm1d forward+backward (the reference
                 formula of scripts/reference.py, or F.batch_norm)
  discriminator  time one discriminator step in training mode
  generator      time one generator step
  enhance        enhance a WAV window by window as the PyTorch SEGAN code does
  make-inputs    write a test recording and a generator checkpoint for
                 `enhance` and `segan enhance`
  report         turn the JSON lines of a run into a Markdown report

The timing subcommands print one JSON line with the same fields as
`examples/bench_segan.rs` (wall-clock and CPU time of every timed iteration
in seconds, resident memory after setup and at peak, from /proc/self/status), so run one case per
process: the peak covers the whole life of the process.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import scipy.io.wavfile
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402  (scripts/reference.py, found through the path above)

WINDOW = 16384
SAMPLE_RATE = 16000


def read_status_kb(field):
    """Return a `kB` field such as VmRSS or VmHWM of /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"field {field} not found in /proc/self/status")


def time_step(step, warmup, iters):
    for _ in range(warmup):
        step()
    times = []
    cpu_times = []
    for _ in range(iters):
        cpu_start = time.process_time()
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return times, cpu_times


def emit(case, impl, details, args, step):
    rss_setup_kb = read_status_kb("VmRSS")
    times, cpu_times = time_step(step, args.warmup, args.iters)
    record = {
        "case": case,
        "impl": impl,
        "details": details,
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "times_s": times,
        "cpu_times_s": cpu_times,
        "rss_setup_kb": rss_setup_kb,
        "peak_rss_kb": read_status_kb("VmHWM"),
    }
    print(json.dumps(record), flush=True)


def setup_torch(args):
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


def parse_shape(text):
    dims = [int(dim) for dim in text.split(",")]
    if len(dims) != 3 or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"invalid shape {text!r}: expected three positive integers B,C,L")
    return dims


def bench_vbn(args):
    setup_torch(args)
    batch, channels, length = args.shape
    vbn = reference.VirtualBatchNorm1d(channels)
    ref_x = torch.randn(batch, channels, length, requires_grad=True)
    x = torch.randn(batch, channels, length, requires_grad=True)
    upstream_ref = torch.randn(batch, channels, length)
    upstream_x = torch.randn(batch, channels, length)
    inputs = [x, ref_x, vbn.gamma, vbn.beta]

    if args.impl == "reference":
        def step():
            out_ref, mean, mean_sq = vbn(ref_x, None, None)
            out_x, _, _ = vbn(x, mean, mean_sq)
            loss = (out_ref * upstream_ref).sum() + (out_x * upstream_x).sum()
            torch.autograd.grad(loss, inputs)
    else:
        # Plain batch normalization of each batch with its own statistics: the
        # same passes over the data, in PyTorch's fused kernels. It cannot mix
        # in reference statistics, so it only bounds what a fused VBN could
        # reach.
        weight = vbn.gamma.view(channels)
        bias = vbn.beta.view(channels)

        def step():
            out_ref = F.batch_norm(ref_x, None, None, weight, bias, training=True, eps=vbn.eps)
            out_x = F.batch_norm(x, None, None, weight, bias, training=True, eps=vbn.eps)
            loss = (out_ref * upstream_ref).sum() + (out_x * upstream_x).sum()
            torch.autograd.grad(loss, inputs)

    emit("vbn", f"torch-{args.impl}", {"shape": args.shape}, args, step)


def bench_discriminator(args):
    setup_torch(args)
    disc = reference.Discriminator()
    disc.train()
    parameters = list(disc.parameters())
    x = torch.randn(args.batch, 2, WINDOW)
    ref_x = torch.randn(args.ref_batch, 2, WINDOW)

    def step():
        out = disc(x, ref_x)
        loss = ((out - 1.0) ** 2).mean()
        torch.autograd.grad(loss, parameters)

    details = {"batch": args.batch, "ref_batch": args.ref_batch}
    emit("discriminator", "torch-reference", details, args, step)


def bench_generator(args):
    setup_torch(args)
    gen = reference.Generator()
    parameters = list(gen.parameters())
    x = torch.randn(args.batch, 1, WINDOW)
    z = torch.randn(args.batch, 1024, 8)
    upstream = torch.randn(args.batch, 1, WINDOW)

    def step():
        out = gen(x, z)
        loss = (out * upstream).sum()
        torch.autograd.grad(loss, parameters)

    emit("generator", "torch-reference", {"batch": args.batch}, args, step)


def read_wav(path):
    """Read a mono WAV (16-bit PCM or 32-bit float) into float32 samples."""
    sample_rate, data = scipy.io.wavfile.read(path)
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {sample_rate} Hz, expected {SAMPLE_RATE} Hz")
    if data.ndim != 1:
        raise ValueError(f"{path}: {data.shape[1]} channels, expected mono")
    if data.dtype == np.int16:
        return data.astype(np.float32) / 32768.0
    if data.dtype == np.float32:
        return data
    raise ValueError(f"{path}: sample type {data.dtype}, expected 16-bit PCM or 32-bit float")


def write_wav_pcm16(path, samples):
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)
    scipy.io.wavfile.write(path, SAMPLE_RATE, pcm)


def make_inputs(args):
    """Write a noisy test recording and a seeded generator state dict."""
    rng = np.random.default_rng(args.seed)
    t = np.arange(int(args.seconds * SAMPLE_RATE)) / SAMPLE_RATE
    # Amplitude-modulated harmonics stand in for speech, plus white noise.
    voiced = sum(np.sin(2 * np.pi * 140.0 * k * t) / k for k in range(1, 6))
    envelope = 0.5 * (1.0 + np.sin(2 * np.pi * 3.0 * t))
    noisy = 0.2 * envelope * voiced + 0.05 * rng.standard_normal(t.shape)
    write_wav_pcm16(args.wav, noisy / max(1.0, np.abs(noisy).max()))

    torch.manual_seed(args.seed)
    torch.save(reference.Generator().state_dict(), args.generator)


def enhance(args):
    """Enhance a recording as the PyTorch SEGAN code does.

    The signal is cut into 16384-sample windows with hop = window, starting
    at 0, 16384, ... while start < len - 16384, so the tail (and, for a length
    that is an exact multiple, the last whole window) is dropped. Each window
    is pre-emphasized, run through G with a fresh z ~ N(0, 1) [1, 1024, 8]
    drawn after a single torch.manual_seed, de-emphasized with the code
    base's filter and appended.
    """
    setup_torch(args)
    gen = reference.Generator()
    if args.generator:
        gen.load_state_dict(torch.load(args.generator, map_location="cpu"))
    gen.eval()
    torch.manual_seed(args.seed)

    noisy = read_wav(args.input)
    enhanced = []
    # No autograd graph: only the forward values are needed.
    with torch.no_grad():
        for start in range(0, len(noisy) - WINDOW, WINDOW):
            window = noisy[start:start + WINDOW]
            z = torch.randn(1, 1024, 8)
            emphasized = reference.emphasis(window[np.newaxis, np.newaxis, :], emph_coeff=0.95, pre=True)
            x = torch.from_numpy(emphasized).float()
            generated = gen(x, z).numpy()
            generated = reference.emphasis(generated, emph_coeff=0.95, pre=False)
            enhanced.append(generated.reshape(-1))
    if not enhanced:
        raise ValueError(f"{args.input}: shorter than {WINDOW + 1} samples, no window to enhance")
    # 32-bit float, the format `segan enhance` writes.
    scipy.io.wavfile.write(args.output, SAMPLE_RATE, np.concatenate(enhanced).astype(np.float32))
    print(json.dumps({"windows": len(enhanced), "samples_in": len(noisy)}), flush=True)


def compare_wav(args):
    """Print a Markdown note comparing enhanced recordings with a reference one."""
    expected = read_wav(args.reference)
    print(f"Enhanced outputs against `{os.path.basename(args.reference)}` ({len(expected)} samples):")
    print()
    for path in args.others:
        actual = read_wav(path)
        name = os.path.basename(path)
        if len(actual) != len(expected):
            print(f"- `{name}`: {len(actual)} samples, lengths differ")
            continue
        difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        print(f"- `{name}`: max |difference| {difference.max():.3g}, mean {difference.mean():.3g}")


# ----------------------------------------------------------------------------
# Report


def cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def command_output(command):
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_records(path):
    records = []
    with open(path) as lines:
        for line in lines:
            line = line.strip()
            if line:
                records.append(json.loads(line))
    return records


def case_label(record, default_threads):
    """Name a case in the report; rows with another thread count get their own case."""
    label = case_name(record)
    if record["threads"] != default_threads:
        label += f" ({record['threads']} thread{'s' if record['threads'] != 1 else ''})"
    return label


def case_name(record):
    details = record["details"]
    if record["case"] == "vbn":
        return "VBN " + "×".join(str(dim) for dim in details["shape"])
    if record["case"] == "discriminator":
        return f"D step, B={details['batch']}, ref {details['ref_batch']}"
    if record["case"] == "generator":
        return f"G step, B={details['batch']}"
    if record["case"] == "enhance":
        return f"enhance {details['seconds']:g} s"
    return record["case"]


def summarize(records, default_threads):
    """Group records by (case label, impl).

    Each group pools the timed iterations of all its processes and keeps
    each process's median, in run order. bench.sh runs every implementation
    once per round, so the k-th process of each group belongs to round k.
    """
    groups = {}
    for record in records:
        key = (case_label(record, default_threads), record["impl"])
        group = groups.setdefault(
            key, {"times": [], "cpu_times": [], "round_medians": [], "peaks": [], "setups": []}
        )
        group["times"].extend(record["times_s"])
        group["cpu_times"].extend(record.get("cpu_times_s", []))
        group["round_medians"].append(statistics.median(record["times_s"]))
        group["peaks"].append(record["peak_rss_kb"])
        if record.get("rss_setup_kb") is not None:
            group["setups"].append(record["rss_setup_kb"])
    return groups


def round_speedups(baseline, group):
    """Per-round ratios baseline median / group median, paired by round."""
    return [base / own for base, own in zip(baseline["round_medians"], group["round_medians"])]


def fmt_time(seconds):
    if seconds >= 1.0:
        return f"{seconds:.2f} s"
    return f"{seconds * 1e3:.2f} ms"


def fmt_mib(kb_values):
    if not kb_values:
        return "–"
    return f"{statistics.median(kb_values) / 1024:.0f} MiB"


# The implementation every ratio divides, per case: the PyTorch eager code.
BASELINE = "torch-reference"
# Row order within a case; implementations not listed follow in run order.
IMPL_ORDER = [
    "rust-reference",
    "rust-reference-default-malloc",
    "rust-fused",
    "rust-fused-stable",
    "rust",
    "rust-default-malloc",
    "rust-batch16",
    "rust-batch1",
    "torch-reference",
    "torch-batch_norm",
]


def impl_rank(impl):
    return IMPL_ORDER.index(impl) if impl in IMPL_ORDER else len(IMPL_ORDER)


def report(args):
    records = load_records(args.results)
    groups = summarize(records, args.threads)
    labels = list(dict.fromkeys(label for label, _ in groups))

    lines = []
    lines.append(f"Run of `{args.command}` on {time.strftime('%Y-%m-%d %H:%M %Z')}.")
    lines.append("")
    lines.append("| Machine | |")
    lines.append("|---|---|")
    lines.append(f"| CPU | {cpu_model()} |")
    lines.append(f"| nproc | {os.cpu_count()} (`nproc`: {command_output(['nproc'])}) |")
    lines.append(f"| Threads (libtorch intra-op, both sides) | {args.threads} |")
    lines.append(f"| Kernel | {platform.release()} |")
    lines.append(f"| PyTorch / libtorch | {torch.__version__} |")
    lines.append(f"| Rust | {command_output(['rustc', '--version'])} |")
    if args.load_before or args.load_after:
        lines.append(f"| Load average (1, 5, 15 min) before / after | {args.load_before} / {args.load_after} |")
    lines.append("")
    lines.append(
        "Median and min: wall-clock time, over every timed iteration of every round "
        "(n = iterations × rounds). CPU: median CPU time of all threads of the process per "
        "iteration, which counts less of the time spent waiting for a core on a busy machine. "
        "Speedup: time of the PyTorch reference ÷ time of the row, from the medians, so above 1 "
        "means faster than PyTorch eager. In brackets are the lowest and highest ratio within one "
        "round, whose processes ran back to back and so saw similar load. "
        "Speedup (min) compares the fastest iterations, which other processes slowed the least, "
        "and Speedup (CPU) the CPU times. Memory: median over rounds of the process's resident "
        "set after setup and at its peak (`VmHWM`), each measurement in its own process."
    )
    lines.append("")
    lines.append(
        "| Case | Implementation | Median | Min | CPU | n | Speedup | Speedup (min) | Speedup (CPU) "
        "| RSS after setup | Peak RSS |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for label in labels:
        baseline = groups.get((label, BASELINE))
        rows = [(impl, group) for (case, impl), group in groups.items() if case == label]
        rows.sort(key=lambda row: impl_rank(row[0]))
        for impl, group in rows:
            median = statistics.median(group["times"])
            fastest = min(group["times"])
            cpu = statistics.median(group["cpu_times"]) if group["cpu_times"] else None
            speedup = speedup_min = speedup_cpu = "–"
            if baseline is not None:
                ratio = statistics.median(baseline["times"]) / median
                per_round = round_speedups(baseline, group)
                speedup = f"{ratio:.2f}× ({min(per_round):.2f}–{max(per_round):.2f})"
                speedup_min = f"{min(baseline['times']) / fastest:.2f}×"
                if cpu and baseline["cpu_times"]:
                    speedup_cpu = f"{statistics.median(baseline['cpu_times']) / cpu:.2f}×"
            cpu_text = fmt_time(cpu) if cpu is not None else "–"
            lines.append(
                f"| {label} | {impl} | {fmt_time(median)} | {fmt_time(fastest)} | {cpu_text} "
                f"| {len(group['times'])} | {speedup} | {speedup_min} | {speedup_cpu} "
                f"| {fmt_mib(group['setups'])} | {fmt_mib(group['peaks'])} |"
            )
    if args.extra and os.path.exists(args.extra):
        with open(args.extra) as extra:
            note = extra.read().strip()
        if note:
            lines.append("")
            lines.append(note)
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w") as out:
            out.write(text)
    sys.stdout.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def timing_parser(name, help_text):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps the default")
        p.add_argument("--warmup", type=int, default=3, help="untimed iterations run first")
        p.add_argument("--iters", type=int, default=10, help="timed iterations")
        p.add_argument("--seed", type=int, default=0, help="torch.manual_seed before setup")
        return p

    p = timing_parser("vbn", "VirtualBatchNorm1d forward+backward")
    p.add_argument("--shape", type=parse_shape, required=True, help="B,C,L of the input and reference batch")
    p.add_argument("--impl", choices=["reference", "batch_norm"], default="reference")
    p.set_defaults(func=bench_vbn)

    p = timing_parser("discriminator", "discriminator step in training mode")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--ref-batch", type=int, default=8)
    p.set_defaults(func=bench_discriminator)

    p = timing_parser("generator", "generator step")
    p.add_argument("--batch", type=int, default=8)
    p.set_defaults(func=bench_generator)

    p = sub.add_parser("enhance", help="enhance a WAV window by window")
    p.add_argument("--input", required=True, help="16-bit PCM WAV at 16 kHz")
    p.add_argument("--output", required=True, help="enhanced WAV to write")
    p.add_argument("--generator", help="state dict saved with torch.save; random weights when omitted")
    p.add_argument("--seed", type=int, default=0, help="torch.manual_seed before the first z")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 keeps the default")
    p.set_defaults(func=enhance)

    p = sub.add_parser("make-inputs", help="write a test recording and a generator checkpoint")
    p.add_argument("--wav", required=True)
    p.add_argument("--generator", required=True)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=make_inputs)

    p = sub.add_parser("compare-wav", help="compare enhanced recordings with a reference one")
    p.add_argument("reference", help="WAV the others are compared with")
    p.add_argument("others", nargs="+", help="WAVs of the same length")
    p.set_defaults(func=compare_wav)

    p = sub.add_parser("report", help="Markdown report of a results file")
    p.add_argument("--results", required=True, help="JSON lines written by scripts/bench.sh")
    p.add_argument("--command", required=True, help="command line of the run, quoted in the report")
    p.add_argument("--threads", type=int, required=True, help="thread count used on both sides")
    p.add_argument("--load-before", default="")
    p.add_argument("--load-after", default="")
    p.add_argument("--extra", help="Markdown file appended to the report, when it exists and is not empty")
    p.add_argument("--output", help="also write the report to this file")
    p.set_defaults(func=report)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
