"""Round trip of a real SEGAN generator checkpoint between PyTorch and Rust.

    python scripts/network_checkpoint.py write DIR   # PyTorch writes, Rust reads
    python scripts/network_checkpoint.py verify DIR  # Rust wrote, PyTorch reads

`write` saves a seeded Generator's state dict in the legacy format with
DataParallel's `module.` prefix, plus an input, a latent and PyTorch's
output as .npy. `verify` loads DIR/from_rust.pt with
`torch.load(weights_only=True)` and strict `load_state_dict`, and checks
that it gives PyTorch's output on the same input.
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import Generator  # noqa: E402


def write(out_dir):
    torch.manual_seed(21)
    net = Generator().eval()
    state = {'module.' + key: value for key, value in net.state_dict().items()}
    torch.save(state, os.path.join(out_dir, 'generator-legacy.pkl'), _use_new_zipfile_serialization=False)
    gen = torch.Generator().manual_seed(22)
    x = (0.1 * torch.randn(1, 1, 16384, generator=gen)).float()
    z = torch.randn(1, 1024, 8, generator=gen)
    with torch.no_grad():
        out = net(x, z)
    for name, value in (('x', x), ('z', z), ('out', out)):
        np.save(os.path.join(out_dir, name + '.npy'), value.numpy())


def verify(out_dir):
    state = torch.load(os.path.join(out_dir, 'from_rust.pt'), weights_only=True)
    net = Generator().eval()
    net.load_state_dict(state, strict=True)
    x = torch.from_numpy(np.load(os.path.join(out_dir, 'x.npy')))
    z = torch.from_numpy(np.load(os.path.join(out_dir, 'z.npy')))
    with torch.no_grad():
        out = net(x, z).numpy()
    expected = np.load(os.path.join(out_dir, 'out.npy'))
    error = float(np.abs(out - expected).max())
    if error != 0.0:
        raise SystemExit(f'output differs from the original by {error}')
    print('verified: strict load, identical output')


if __name__ == '__main__':
    {'write': write, 'verify': verify}[sys.argv[1]](sys.argv[2])
