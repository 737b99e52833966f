"""``sptrain inspect PATH``: describe a shard, an ONNX model, a metadata or tinygrad pickle, or a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..episodes.shard_report import shard_report
from ..errors import ConfigError
from ..export import describe
from .commands import help_of

NAME = "inspect"

KINDS = ("shard", "onnx", "metadata", "tinygrad", "checkpoint")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="Describe an artifact: a Zarr shard (keys, shapes, dtypes, attributes, duration, label statistics);"
                    " an ONNX model (inputs, outputs, metadata_props, opset, size, parameters, FLOPs estimate, "
                    "contract check); a *_metadata.pkl (restricted loader, compared with the matching profile); a "
                    "*_tinygrad.pkl (file facts and its JSON sidecar - never unpickled, that would execute code); a "
                    "checkpoint *.pt (run, epoch, stage, profile, config, parameter counts).")
    parser.add_argument("path", help="a shard directory (*.zarr), *.onnx, *_metadata.pkl, *_tinygrad.pkl or *.pt")
    parser.add_argument("--kind", choices=KINDS, default=None, help="what PATH is (default: from its name)")
    parser.set_defaults(func=run)


def kind_of(path: Path) -> str | None:
    name = path.name.lower()
    if path.suffix == ".zarr" or (path / "zarr.json").exists():
        return "shard"
    if name.endswith(".onnx"):
        return "onnx"
    if name.endswith("_metadata.pkl"):
        return "metadata"
    if name.endswith("_tinygrad.pkl"):
        return "tinygrad"
    if name.endswith((".pt", ".pth")):
        return "checkpoint"
    return None


def run(args: argparse.Namespace) -> int:
    path = Path(args.path)
    kind = args.kind or kind_of(path)
    if kind is None:
        raise ConfigError(f"{path}: cannot tell what this is from its name; inspect takes a shard (*.zarr), *.onnx, "
                          f"*_metadata.pkl, *_tinygrad.pkl or a checkpoint *.pt - or pass --kind")
    if kind != "shard" and not path.is_file():
        raise ConfigError(f"{path}: no such file; inspect takes an existing {kind} file")
    if kind == "shard":
        print(shard_report(path))
        return 0
    report = {"onnx": describe.describe_onnx, "metadata": describe.describe_metadata,
              "tinygrad": describe.describe_tinygrad, "checkpoint": describe.describe_checkpoint}[kind]
    print(report(path))
    return 0
