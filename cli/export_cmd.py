"""``sptrain export CKPT --out-dir DIR``: a checkpoint's EMA models -> modeld's files, checked before writing."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError
from ..export.artifacts import ArtifactPaths, resolve_model_names
from ..export.exporter import export_models, format_summary
from ..export.scripts import add_device_and_profile
from ..training.checkpoint import latest_checkpoint
from .commands import help_of

NAME = "export"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        NAME, help=help_of(NAME),
        description="Export the EMA vision and policy models of a checkpoint as driving_vision.onnx, "
                    "driving_vision_tinygrad.pkl, driving_vision_metadata.pkl, driving_policy.onnx, "
                    "driving_policy_tinygrad.pkl and driving_policy_metadata.pkl (+ a JSON sidecar per tinygrad "
                    "pickle). Every file is checked (torch vs onnxruntime vs tinygrad parity, metadata, parsing) in "
                    "a staging folder and moved into --out-dir only when all checks pass.")
    parser.add_argument("checkpoint", help="a training checkpoint (<output_dir>/checkpoints/epoch_XXXX.pt), or a "
                                           "training output folder (its newest checkpoint)")
    parser.add_argument("--out-dir", required=True, type=Path, help="folder to write the files into (created)")
    parser.add_argument("--models", default="vision,policy", help="which models: vision, policy or vision,policy "
                        "(default both)")
    add_device_and_profile(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = resolve_model_names(args.models)
    targets = {name: ArtifactPaths.in_dir(args.out_dir, name) for name in names}
    report = export_models(newest_checkpoint(args.checkpoint), targets, args.device, args.profile)
    print(format_summary(report))
    return 0


def newest_checkpoint(path: str) -> str:
    """``path`` itself, or for a training output folder (or its checkpoints/) the newest checkpoint in it."""
    folder = Path(path)
    if not folder.is_dir():
        return path
    found = latest_checkpoint(folder.parent if folder.name == "checkpoints" else folder)
    if found is None:
        raise ConfigError(f"{folder} holds no checkpoint (checkpoints/epoch_*.pt); give a checkpoint file or the "
                          f"output folder of a training run")
    print(f"newest checkpoint in {folder}: {found}")
    return str(found)
