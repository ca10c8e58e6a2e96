"""Measures how far float32 VBN formulas move the discriminator's gradients.

    .venv/bin/python scripts/vbn_conditioning.py [CASE.npz]

Replays a discriminator fixture case (default: the training case with batch
4) three times: with the reference formula, with the fused formula (the
batch-norm kernel route of `Formula::Fused` in src/nn/vbn.rs), and with the
normalization evaluated in float64. It prints the largest difference of `conv1.bias`'s gradient
between them; src/parity/tolerance.rs sizes the fused tolerance from it.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_NORMALIZE = reference.VirtualBatchNorm1d.normalize


def fused(self, x, mean, mean_sq):
    """The Rust `Formula::Fused`: centering, then the batch-norm kernel with
    constant statistics, whose weight and bias carry the statistics'
    gradients while keeping the values `gamma` and `beta`."""
    channels = x.shape[1]
    variance = self.eps + mean_sq - mean ** 2
    mean_const, variance_const = mean.detach(), variance.detach()
    weight, bias = self.gamma, self.beta
    if mean.requires_grad or variance.requires_grad:
        r = variance.rsqrt()
        weight = self.gamma * (r / r.detach())
        bias = self.beta - (mean - mean_const) * (self.gamma * r.detach()).detach()
    return F.batch_norm(x - mean_const, torch.zeros(channels), variance_const.view(channels),
                        weight.view(channels), bias.view(channels), False, 0.0, 0.0)


def float64(self, x, mean, mean_sq):
    std = torch.sqrt(self.eps + mean_sq.double() - mean.double() ** 2)
    out = (x.double() - mean.double()) / std * self.gamma.double() + self.beta.double()
    return out.float()


def bias_gradient(case, disc, normalize):
    reference.VirtualBatchNorm1d.normalize = normalize
    x = torch.from_numpy(case['input.x']).clone().requires_grad_()
    ref_x = torch.from_numpy(case['input.ref_x'])
    torch.manual_seed(int(case['config.dropout_seed']))
    out = disc(x, ref_x)
    upstream = torch.from_numpy(case['upstream.out']).reshape(-1)
    (out.reshape(-1) * upstream).sum().backward()
    grad = disc.conv1.bias.grad.clone()
    disc.zero_grad()
    return grad


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        ROOT, 'fixtures/cpu/discriminator-train-b4-r3.npz')
    case = np.load(path)
    torch.manual_seed(int(case['config.init_seed']))
    disc = reference.Discriminator()
    disc.train(bool(case['config.train']))

    grads = {name: bias_gradient(case, disc, normalize) for name, normalize in
             (('reference', REFERENCE_NORMALIZE), ('fused', fused), ('float64', float64))}
    for a, b in (('reference', 'float64'), ('fused', 'float64'), ('fused', 'reference')):
        error = (grads[a] - grads[b]).abs().max().item()
        print(f'max |grad.conv1.bias {a} - {b}|: {error:.3e}')


if __name__ == '__main__':
    main()
