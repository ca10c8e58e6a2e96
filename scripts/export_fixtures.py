"""Exports parity fixture cases from the PyTorch reference in scripts/reference.py.

One case is one .npz file whose name starts with the module (`vbn-`,
`discriminator-`, `generator-`). docs/fixtures.md describes the arrays.

    .venv/bin/python scripts/export_fixtures.py --speech DIR --out fixtures/cpu
    .venv/bin/python scripts/export_fixtures.py --speech DIR --out fixtures/cuda --device cuda

DIR contains 48 kHz (or any rate) WAV recordings of speech; scripts/fetch_speech.sh
provides the ones the committed fixtures were made from.
"""

import argparse
import glob
import os
import sys
import wave

import numpy as np
import torch
from scipy.signal import resample_poly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import VBN_VARIANTS, Discriminator, Generator, emphasis  # noqa: E402

SUMMARY_THRESHOLD = 65536
SUMMARY_SAMPLES = 256
WINDOW = 16384


def summary(t):
    """[sum, sum of squares, sum of |t|, t[i_0], ..., t[i_{K-1}]] in float64."""
    flat = t.detach().to('cpu', torch.float64).reshape(-1).numpy()
    n = flat.size
    k = min(SUMMARY_SAMPLES, n)
    idx = (np.arange(k, dtype=np.int64) * n) // k
    head = np.array([flat.sum(), (flat * flat).sum(), np.abs(flat).sum()])
    return np.concatenate([head, flat[idx]])


class Case:
    def __init__(self, name):
        self.name = name
        self.arrays = {}

    def put(self, kind, name, t):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu()
            if kind in ('param', 'output', 'grad') and t.numel() > SUMMARY_THRESHOLD:
                self.arrays[f'summary.{kind}.{name}'] = summary(t)
                return
            t = t.numpy()
        self.arrays[f'{kind}.{name}'] = t

    def config(self, name, value):
        dtype = np.float64 if isinstance(value, float) else np.int64
        self.arrays[f'config.{name}'] = np.array(value, dtype=dtype)

    def save(self, out_dir):
        path = os.path.join(out_dir, self.name + '.npz')
        np.savez(path, **self.arrays)
        return path


def loss_of(outputs, upstreams):
    total = 0
    for name, out in outputs.items():
        total = total + (out * upstreams[name]).sum()
    return total


def random_upstream(outputs, gen):
    return {name: torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
            for name, out in outputs.items()}


# ---------------------------------------------------------------- VBN cases

VBN_CASES = [
    # name, B, N_ref, C, L, eps, dtype, input mean, params from init seed
    ('vbn-b1-r4-c3-l5-f32', 1, 4, 3, 5, 1e-5, torch.float32, 0.0, False),
    ('vbn-b2-r5-c32-l257-f32', 2, 5, 32, 257, 1e-5, torch.float32, 0.0, False),
    ('vbn-b7-r3-c1-l1-f32', 7, 3, 1, 1, 1e-5, torch.float32, 0.0, False),
    ('vbn-b16-r8-c32-l257-eps1e-3-f32', 16, 8, 32, 257, 1e-3, torch.float32, 0.0, False),
    ('vbn-b2-r9-c3-l257-mean3-f32', 2, 9, 3, 257, 1e-5, torch.float32, 3.0, False),
    ('vbn-b16-r2-c3-l5-mean-2-f32', 16, 2, 3, 5, 1e-3, torch.float32, -2.0, False),
    ('vbn-b7-r2-c32-l257-f64', 7, 2, 32, 257, 1e-5, torch.float64, 0.0, False),
    ('vbn-b16-r1-c3-l1-eps1e-3-f64', 16, 1, 3, 1, 1e-3, torch.float64, 0.0, False),
    ('vbn-b1-r16-c1-l257-mean-5-f64', 1, 16, 1, 257, 1e-5, torch.float64, -5.0, False),
    ('vbn-b2-r7-c32-l5-seed-f32', 2, 7, 32, 5, 1e-5, torch.float32, 0.5, True),
    ('vbn-b7-r16-c3-l257-seed-f64', 7, 16, 3, 257, 1e-3, torch.float64, 1.0, True),
    # The other definitions (config.variant 1: TensorFlow SEGAN, 2: Salimans et al.).
    ('vbn-tf-b2-r5-c3-l257-f32', 2, 5, 3, 257, 1e-5, torch.float32, 0.5, False, 1),
    ('vbn-tf-b7-r3-c32-l5-f64', 7, 3, 32, 5, 1e-3, torch.float64, -1.0, False, 1),
    ('vbn-tf-b1-r4-c3-l5-seed-f32', 1, 4, 3, 5, 1e-5, torch.float32, 0.0, True, 1),
    ('vbn-salimans-b2-r5-c3-l257-f32', 2, 5, 3, 257, 1e-5, torch.float32, 0.5, False, 2),
    ('vbn-salimans-b16-r2-c32-l5-mean3-f64', 16, 2, 32, 5, 1e-5, torch.float64, 3.0, False, 2),
    ('vbn-salimans-b1-r7-c1-l257-f32', 1, 7, 1, 257, 1e-3, torch.float32, 0.0, False, 2),
]


def export_vbn(out_dir, device, index, spec):
    name, b, n_ref, c, length, eps, dtype, offset, from_seed, variant = (tuple(spec) + (0,))[:10]
    gen = torch.Generator().manual_seed(1000 + index)
    case = Case(name)
    layer = VBN_VARIANTS[variant]
    if variant:
        case.config('variant', variant)

    if from_seed:
        seed = 7 + index
        torch.manual_seed(seed)
        vbn = layer(c, eps=eps)
        case.config('init_seed', seed)
    else:
        vbn = layer(c, eps=eps)
        with torch.no_grad():
            vbn.gamma.copy_(1.0 + 0.3 * torch.randn(1, c, 1, generator=gen))
            vbn.beta.copy_(0.5 * torch.randn(1, c, 1, generator=gen))
    vbn = vbn.to(device=device, dtype=dtype)
    case.config('eps', float(eps))

    scale = 1.0 + torch.rand(1, c, 1, generator=gen, dtype=torch.float64)
    x = (torch.randn(b, c, length, generator=gen, dtype=torch.float64) * scale + offset)
    ref_x = (torch.randn(n_ref, c, length, generator=gen, dtype=torch.float64) * scale + offset)
    x = x.to(device=device, dtype=dtype).requires_grad_()
    ref_x = ref_x.to(device=device, dtype=dtype).requires_grad_()

    if variant:
        ref_out, ref_mean, ref_mean_sq = vbn(ref_x, None, None)
        out, mean, mean_sq = vbn(x, ref_mean, ref_mean_sq, ref_size=n_ref)
    else:
        ref_out, ref_mean, ref_mean_sq = vbn(ref_x, None, None)
        out, mean, mean_sq = vbn(x, ref_mean, ref_mean_sq)
    outputs = dict(ref_out=ref_out, ref_mean=ref_mean, ref_mean_sq=ref_mean_sq,
                   out=out, mean=mean, mean_sq=mean_sq)
    upstreams = random_upstream(outputs, gen)
    loss_of(outputs, upstreams).backward()

    case.put('input', 'x', x)
    case.put('input', 'ref_x', ref_x)
    case.put('param', 'gamma', vbn.gamma)
    case.put('param', 'beta', vbn.beta)
    for key, value in upstreams.items():
        case.put('upstream', key, value)
    for key, value in outputs.items():
        case.put('output', key, value)
    case.put('grad', 'x', x.grad)
    case.put('grad', 'ref_x', ref_x.grad)
    case.put('grad', 'gamma', vbn.gamma.grad)
    case.put('grad', 'beta', vbn.beta.grad)
    return case.save(out_dir)


# ------------------------------------------------------------ speech inputs

def read_wav(path):
    with wave.open(path, 'rb') as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise SystemExit(f'{path}: expected 16-bit PCM, got {8 * width}-bit')
    data = np.frombuffer(raw, dtype='<i2').astype(np.float64) / 32768.0
    return data.reshape(-1, channels).mean(axis=1), rate


def speech_windows(speech_dir, count, seed):
    """`count` pre-emphasized [2, 16384] (clean, noisy) windows of real speech."""
    paths = sorted(p for p in glob.glob(os.path.join(speech_dir, '*.wav'))
                   if 'noise' not in os.path.basename(p).lower())
    if not paths:
        raise SystemExit(f'no speech WAV files in {speech_dir}')
    rng = np.random.default_rng(seed)
    windows = []
    for i in range(count):
        data, rate = read_wav(paths[i % len(paths)])
        data = resample_poly(data, 16000, rate) if rate != 16000 else data
        if data.size < WINDOW:
            data = np.pad(data, (0, WINDOW - data.size))
        start = int(rng.integers(0, data.size - WINDOW + 1))
        clean = data[start:start + WINDOW]
        noise = rng.standard_normal(WINDOW)
        snr_db = rng.choice([0.0, 5.0, 10.0])
        gain = np.sqrt((clean ** 2).mean() / (noise ** 2).mean() / 10 ** (snr_db / 10))
        windows.append(np.stack([clean, clean + gain * noise]))
    batch = emphasis(np.stack(windows), 0.95, pre=True)
    return torch.from_numpy(batch.astype(np.float32))


# -------------------------------------------------- network cases

DISCRIMINATOR_CASES = [
    # name, B, N_ref, train
    ('discriminator-eval-b1-r3', 1, 3, False),
    ('discriminator-eval-b2-r1', 2, 1, False),
    ('discriminator-eval-b4-r2', 4, 2, False),
    ('discriminator-train-b1-r2', 1, 2, True),
    ('discriminator-train-b2-r4', 2, 4, True),
    ('discriminator-train-b4-r3', 4, 3, True),
]

GENERATOR_CASES = [
    ('generator-b1', 1),
    ('generator-b2', 2),
]


def put_params(case, module):
    """Stores the freshly initialized parameters, which the Rust side checks."""
    for key, param in module.named_parameters():
        case.put('param', key, param)


def export_discriminator(out_dir, device, index, spec, speech_dir):
    name, b, n_ref, train = spec
    case = Case(name)
    init_seed, dropout_seed = 100 + index, 200 + index

    torch.manual_seed(init_seed)
    disc = Discriminator()
    put_params(case, disc)
    disc = disc.to(device)
    disc.train(train)
    case.config('init_seed', init_seed)
    case.config('train', int(train))

    batch = speech_windows(speech_dir, b + n_ref, seed=300 + index)
    x = batch[:b].to(device).requires_grad_()
    ref_x = batch[b:].to(device).requires_grad_()

    if train:
        torch.manual_seed(dropout_seed)
        case.config('dropout_seed', dropout_seed)
    out = disc(x, ref_x)

    gen = torch.Generator().manual_seed(400 + index)
    upstreams = random_upstream(dict(out=out), gen)
    loss_of(dict(out=out), upstreams).backward()

    case.put('input', 'x', x)
    case.put('input', 'ref_x', ref_x)
    case.put('upstream', 'out', upstreams['out'])
    case.put('output', 'out', out)
    case.put('grad', 'x', x.grad)
    if ref_x.grad is not None:
        case.put('grad', 'ref_x', ref_x.grad)
    for key, param in disc.named_parameters():
        if param.grad is not None:
            case.put('grad', key, param.grad)
    return case.save(out_dir)


def export_generator(out_dir, device, index, spec, speech_dir):
    name, b = spec
    case = Case(name)
    init_seed = 500 + index

    torch.manual_seed(init_seed)
    gen_net = Generator()
    put_params(case, gen_net)
    gen_net = gen_net.to(device)
    case.config('init_seed', init_seed)

    batch = speech_windows(speech_dir, b, seed=600 + index)
    x = batch[:, 1:2].contiguous().to(device).requires_grad_()
    gen = torch.Generator().manual_seed(700 + index)
    z = torch.randn(b, 1024, 8, generator=gen).to(device).requires_grad_()

    out = gen_net(x, z)
    upstreams = random_upstream(dict(out=out), gen)
    loss_of(dict(out=out), upstreams).backward()

    case.put('input', 'x', x)
    case.put('input', 'z', z)
    case.put('upstream', 'out', upstreams['out'])
    case.put('output', 'out', out)
    case.put('grad', 'x', x.grad)
    case.put('grad', 'z', z.grad)
    for key, param in gen_net.named_parameters():
        case.put('grad', key, param.grad)
    return case.save(out_dir)


def export_state_dict_keys(out_dir):
    """Writes `<key> <shape>` per parameter, in state-dict order, per network."""
    paths = []
    for name, module in (('discriminator', Discriminator()), ('generator', Generator())):
        path = os.path.join(out_dir, f'state-dict-{name}.txt')
        with open(path, 'w') as f:
            for key, value in module.state_dict().items():
                f.write(f"{key} {','.join(str(d) for d in value.shape)}\n")
        paths.append(path)
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', help='folder for the .npz cases')
    parser.add_argument('--speech', help='folder of speech WAV files (needed for network cases)')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--only', default='', help='export only cases whose name starts with this')
    parser.add_argument('--keys', metavar='DIR',
                        help='write the networks\' state-dict keys and shapes into DIR and exit')
    args = parser.parse_args()
    if args.keys:
        os.makedirs(args.keys, exist_ok=True)
        print('\n'.join(export_state_dict_keys(args.keys)))
        return
    if not args.out:
        parser.error('--out DIR is required unless --keys is given')

    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: PyTorch sees no GPU')
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(max(1, torch.get_num_threads()))
    os.makedirs(args.out, exist_ok=True)

    jobs = [(spec[0], lambda i=i, s=spec: export_vbn(args.out, args.device, i, s))
            for i, spec in enumerate(VBN_CASES)]
    jobs += [(spec[0], lambda i=i, s=spec: export_discriminator(args.out, args.device, i, s, args.speech))
             for i, spec in enumerate(DISCRIMINATOR_CASES)]
    jobs += [(spec[0], lambda i=i, s=spec: export_generator(args.out, args.device, i, s, args.speech))
             for i, spec in enumerate(GENERATOR_CASES)]

    for name, job in jobs:
        if not name.startswith(args.only):
            continue
        if not name.startswith('vbn-') and not args.speech:
            raise SystemExit(f'{name}: --speech DIR is needed for network cases')
        print(job())


if __name__ == '__main__':
    main()
