"""Argument handling shared by ``python export/export_vision.py`` / ``export_policy.py`` (one model each)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ..contract.profiles import profile_ids
from ..errors import run_guarded
from .artifacts import ArtifactPaths
from .exporter import export_models, format_summary
from .tinygrad_compile import DEFAULT_DEVICE


def add_device_and_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=DEFAULT_DEVICE, help="tinygrad device the pickle is compiled for (DEV=; "
                        "default CPU). A comma device compiles its own pickle from the ONNX")
    parser.add_argument("--profile", choices=profile_ids(), default=None, help="contract profile to export for "
                        "(default: the checkpoint's own); any profile whose networks the checkpoint trained (sptrain "
                        "contract list: trains_as), e.g. op-2026.07 for an op-0.10.1 checkpoint")


def single_model_parser(model_name: str, script: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python export/{script}", description=f"Export the EMA {model_name} of a "
                                     f"checkpoint: ONNX + tinygrad pickle + metadata pickle (+ the pickle's JSON "
                                     f"sidecar), checked against torch before anything is written.")
    parser.add_argument("checkpoint", help="a training checkpoint (<output_dir>/checkpoints/epoch_XXXX.pt)")
    parser.add_argument("--onnx", required=True, type=Path, help=f"where to write {model_name}.onnx")
    parser.add_argument("--tinygrad", required=True, type=Path, help=f"where to write {model_name}_tinygrad.pkl "
                        "(the sidecar goes beside it as .json)")
    parser.add_argument("--metadata", required=True, type=Path, help=f"where to write {model_name}_metadata.pkl")
    add_device_and_profile(parser)
    return parser


def single_model_main(model_name: str, script: str, argv: Sequence[str] | None = None) -> int:
    args = single_model_parser(model_name, script).parse_args(argv)

    def run() -> int:

        paths = ArtifactPaths(onnx=args.onnx, tinygrad=args.tinygrad, metadata=args.metadata)
        report = export_models(args.checkpoint, {model_name: paths}, args.device, args.profile)
        print(format_summary(report))
        return 0

    return run_guarded(script, run)
