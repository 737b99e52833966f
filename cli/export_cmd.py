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
                    "pickle); for the 2026 profiles (--profile op-0.11.1, op-2026.07, op-2026.09, sp-2026.10) also the "
                    "runtime's files (driving_tinygrad.pkl, driving_supercombo.onnx, warps) and sptrain_export.json. "
                    "Every file is checked (torch vs onnxruntime vs tinygrad parity, metadata, parsing) in "
                    "a staging folder and moved into --out-dir only when all checks pass.")
    parser.add_argument("checkpoint", help="a training checkpoint (<output_dir>/checkpoints/epoch_XXXX.pt), or a "
                                           "training output folder (its newest checkpoint)")
    parser.add_argument("--out-dir", required=True, type=Path, help="folder to write the files into (created)")
    parser.add_argument("--models", default="vision,policy", help="which models: vision, policy or vision,policy "
                        "(default both)")
    add_device_and_profile(parser)
    parser.add_argument("--cameras", nargs="+", default=None, metavar="WxH", help="camera sizes the runtime "
                        "pickles of the 2026 profiles are compiled for (default 1928x1208 1344x760: comma 3/3X and "
                        "comma four)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = resolve_model_names(args.models)
    targets = {name: ArtifactPaths.in_dir(args.out_dir, name) for name in names}
    report = export_models(newest_checkpoint(args.checkpoint), targets, args.device, args.profile,
                           cameras=check_cameras(args.cameras))
    print(format_summary(report))
    return 0


def check_cameras(cameras: list[str] | None) -> list[str] | None:
    for text in cameras or []:
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ConfigError(f"--cameras {text!r}: expected WIDTHxHEIGHT such as 1928x1208 or 1344x760")
    return [c.lower() for c in cameras] if cameras else None


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
