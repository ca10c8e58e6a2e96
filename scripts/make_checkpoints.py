#!/usr/bin/env python3
"""Write real PyTorch checkpoints for the Rust checkpoint tests, and verify
checkpoints that the Rust side wrote.

    make_checkpoints.py OUT_DIR
        Writes checkpoints in the zip and legacy formats, under several file
        names, plus OUT_DIR/manifest.json with the exact expected contents
        (dtype, shape, stride, storage offset and raw bytes of each tensor).

    make_checkpoints.py verify FILE --expect ORIGINAL [--module NAME] [--key KEY]
        Loads FILE with torch.load(weights_only=True) and compares it with
        ORIGINAL. With --module (generator or discriminator) FILE must be a
        state dict that the stand-in module accepts with strict=True, equal
        to ORIGINAL[KEY] (or ORIGINAL itself without --key). Without
        --module FILE must equal ORIGINAL entry by entry. When it contains
        generator, discriminator, g_optimizer and d_optimizer entries, they
        are loaded into the stand-in modules and their optimizers.

Needs torch; run it with the project's .venv/bin/python.
"""

import argparse
import collections
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Affine(nn.Module):
    """Per-channel scale and shift with [1, C, 1] parameters."""

    def __init__(self, channels):
        super().__init__()
        self.gamma = nn.Parameter(torch.randn(1, channels, 1))
        self.beta = nn.Parameter(torch.randn(1, channels, 1))

    def forward(self, x):
        return x * self.gamma + self.beta


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Conv1d(1, 4, 5, stride=2, padding=2)
        self.norm = Affine(4)
        self.dec = nn.ConvTranspose1d(4, 1, 4, stride=2, padding=1)

    def forward(self, x):
        return torch.tanh(self.dec(F.leaky_relu(self.norm(self.enc(x)))))


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(2, 3, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(3)
        self.norm = Affine(3)
        self.fc = nn.Linear(3 * 8, 1)

    def forward(self, x):
        h = F.leaky_relu(self.norm(self.bn(self.conv(x))))
        return self.fc(h.flatten(1))


MODULES = {"generator": Generator, "discriminator": Discriminator}


def make_optimizers(generator, discriminator):
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.RMSprop(discriminator.parameters(), lr=5e-5)
    return g_optimizer, d_optimizer


def trained_gan():
    """Returns the modules and optimizers after one training step."""
    torch.manual_seed(0)
    generator, discriminator = Generator(), Discriminator()
    g_optimizer, d_optimizer = make_optimizers(generator, discriminator)
    noisy = torch.randn(4, 1, 16)
    fake = generator(noisy)
    d_loss = discriminator(torch.cat([fake.detach(), noisy], 1)).pow(2).mean()
    d_optimizer.zero_grad()
    d_loss.backward()
    d_optimizer.step()
    g_loss = (discriminator(torch.cat([fake, noisy], 1)) - 1).pow(2).mean()
    g_optimizer.zero_grad()
    g_loss.backward()
    g_optimizer.step()
    return generator, discriminator, g_optimizer, d_optimizer


def dtype_tensors():
    torch.manual_seed(1)
    base = torch.randn(2, 3) * 100
    special = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1e-30, 65504.0])
    return collections.OrderedDict(
        [
            ("f32", torch.cat([base.flatten(), special]).float()),
            ("f64", base.double() / 3),
            ("f16", base.half()),
            ("bf16", base.bfloat16()),
            ("i64", torch.tensor([-(2**62), -1, 0, 1, 2**62])),
            ("i32", torch.tensor([-(2**31), -1, 0, 2**31 - 1], dtype=torch.int32)),
            ("i16", torch.tensor([-32768, 7, 32767], dtype=torch.int16)),
            ("i8", torch.tensor([-128, 0, 127], dtype=torch.int8)),
            ("u8", torch.tensor([0, 128, 255], dtype=torch.uint8)),
            ("bool", torch.tensor([[True, False], [False, True]])),
            ("scalar", torch.tensor(2.5)),
            ("empty", torch.zeros(0, 3)),
        ]
    )


def view_tensors():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    return {
        "a": base,
        "b": base[1:, ::2],
        "c": base.t(),
        "d": base[2],
        "e": base[3, 4],
        "f": base.view(2, 12)[:, 5:9],
    }


def misc_values():
    return {
        "s": "text é",
        "f": 1.5,
        "n": None,
        "t": True,
        "tu": (1, 2),
        "big": 2**40,
        "neg": -5,
        "huge": -(2**63),
        "l": [1, "a", [2.0]],
        "b": b"\x00\xff ab",
        "nested": {1: {"x": [True, False]}, 2: {}},
        "size": torch.Size([2, 3]),
        "p": nn.Parameter(torch.ones(2)),
        "x": torch.arange(3, dtype=torch.int32),
    }


def save_zip(obj, path, **kwargs):
    torch.save(obj, path, **kwargs)


def save_legacy(obj, path, **kwargs):
    torch.save(obj, path, _use_new_zipfile_serialization=False, **kwargs)


def tensor_record(name, tensor):
    flat = tensor.detach().contiguous().reshape(-1)
    return {
        "name": name,
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "shape": list(tensor.shape),
        "stride": list(tensor.stride()),
        "offset": tensor.storage_offset(),
        "hex": flat.view(torch.uint8).numpy().tobytes().hex(),
    }


def state_dict_records(state_dict, strip=""):
    return [tensor_record(name.removeprefix(strip), t) for name, t in state_dict.items()]


def make(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    generator, discriminator, g_optimizer, d_optimizer = trained_gan()
    gan = {
        "discriminator": discriminator.state_dict(),
        "generator": generator.state_dict(),
        "g_optimizer": g_optimizer.state_dict(),
        "d_optimizer": d_optimizer.state_dict(),
        "epoch": 3,
    }
    gan_expected = {
        "top_keys": list(gan),
        "state_dicts": {
            "discriminator": state_dict_records(gan["discriminator"]),
            "generator": state_dict_records(gan["generator"]),
        },
    }
    generator_expected = {"state_dicts": {"": state_dict_records(gan["generator"])}}
    parallel = nn.DataParallel(generator).state_dict()
    dtypes = dtype_tensors()
    views = view_tensors()

    files = [
        ("gan_zip.pt", save_zip, gan, gan_expected),
        ("gan_legacy.pth", save_legacy, gan, gan_expected),
        ("generator_zip.pkl", save_zip, gan["generator"], generator_expected),
        ("generator_legacy.bin", save_legacy, gan["generator"], generator_expected),
        ("generator_zip", save_zip, gan["generator"], generator_expected),
        ("generator_legacy", save_legacy, gan["generator"], generator_expected),
        ("plain_dict.pt", save_zip, dict(gan["generator"]), generator_expected),
        ("data_parallel.pt", save_zip, parallel, generator_expected),
        ("data_parallel_legacy.pt", save_legacy, parallel, generator_expected),
        ("dtypes.pt", save_zip, dtypes, {"state_dicts": {"": state_dict_records(dtypes)}}),
        ("dtypes_legacy.pt", save_legacy, dtypes, {"state_dicts": {"": state_dict_records(dtypes)}}),
        ("views.pt", save_zip, views, {"state_dicts": {"": state_dict_records(views)}}),
        ("views_legacy.pt", save_legacy, views, {"state_dicts": {"": state_dict_records(views)}}),
        ("misc.pt", save_zip, misc_values(), {}),
        ("misc_legacy.pt", save_legacy, misc_values(), {}),
    ]
    manifest = {}
    for name, save, obj, expected in files:
        save(obj, os.path.join(out_dir, name))
        manifest[name] = expected
    for protocol in (4, 5):
        name = f"generator_protocol{protocol}.pt"
        save_zip(gan["generator"], os.path.join(out_dir, name), pickle_protocol=protocol)
        manifest[name] = generator_expected
        name = f"gan_protocol{protocol}_legacy.pt"
        save_legacy(gan, os.path.join(out_dir, name), pickle_protocol=protocol)
        manifest[name] = gan_expected
    storage = torch.arange(4, dtype=torch.int16).untyped_storage()
    save_zip({"storage": storage}, os.path.join(out_dir, "untyped_storage.pt"))
    manifest["untyped_storage.pt"] = {}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


def same(a, b, path="value"):
    """Raises AssertionError naming the first difference between a and b."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor), f"{path}: {type(a)} vs {type(b)}"
        assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} vs {b.dtype}"
        assert a.shape == b.shape, f"{path}: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        bytes_a = a.detach().contiguous().reshape(-1).view(torch.uint8)
        bytes_b = b.detach().contiguous().reshape(-1).view(torch.uint8)
        assert torch.equal(bytes_a, bytes_b), f"{path}: values differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict), f"{path}: dict vs {type(b)}"
        assert list(a) == list(b), f"{path}: keys {list(a)} vs {list(b)}"
        for key in a:
            same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) or (isinstance(a, tuple) and isinstance(b, tuple)), f"{path}: {type(a)} vs {type(b)}"
        assert len(a) == len(b), f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b), f"{path}: {type(a)} vs {type(b)}"
        assert a == b, f"{path}: {a!r} vs {b!r}"


def verify(file, original, module, key):
    loaded = torch.load(file, weights_only=True)
    expected = torch.load(original, weights_only=True)
    if module is not None:
        if key is not None:
            expected = expected[key]
        MODULES[module]().load_state_dict(loaded, strict=True)
        same(loaded, expected, module)
        print(f"verify: {file} is a {module} state dict equal to {original}")
        return
    same(loaded, expected)
    if all(k in loaded for k in ("generator", "discriminator", "g_optimizer", "d_optimizer")):
        generator, discriminator = Generator(), Discriminator()
        generator.load_state_dict(loaded["generator"], strict=True)
        discriminator.load_state_dict(loaded["discriminator"], strict=True)
        g_optimizer, d_optimizer = make_optimizers(generator, discriminator)
        g_optimizer.load_state_dict(loaded["g_optimizer"])
        d_optimizer.load_state_dict(loaded["d_optimizer"])
        same(g_optimizer.state_dict(), expected["g_optimizer"], "g_optimizer after loading")
    print(f"verify: {file} equals {original}")


def main(argv):
    if len(argv) >= 1 and argv[0] == "verify":
        parser = argparse.ArgumentParser(prog="make_checkpoints.py verify")
        parser.add_argument("file")
        parser.add_argument("--expect", required=True, help="checkpoint written by torch to compare with")
        parser.add_argument("--module", choices=sorted(MODULES), help="stand-in module that must accept FILE")
        parser.add_argument("--key", help="entry of the --expect checkpoint that FILE must equal")
        args = parser.parse_args(argv[1:])
        verify(args.file, args.expect, args.module, args.key)
        return
    parser = argparse.ArgumentParser(prog="make_checkpoints.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", help="folder to write the checkpoints and manifest.json to")
    args = parser.parse_args(argv)
    make(args.out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
