"""Micro vision and policy networks with the contract's inputs and outputs: the runtime export and its harnesses
tested in seconds (tinygrad compiles a few small kernels instead of the tiny training networks)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.export.checkpoint_models import ExportSource

FEATURES_SEEN = 16  # the micro policy reads the first 16 values of every history entry


class MicroVision(nn.Module):
    def __init__(self, profile_id: str):
        super().__init__()
        self.spec = get_profile(profile_id).vision
        self.pool = nn.AdaptiveAvgPool2d((4, 8))
        self.out = nn.Linear(2 * 12 * 32, self.spec.output_width)

    def forward(self, img, big_img):
        x = torch.cat([self.pool(img.float() / 255.0).flatten(1), self.pool(big_img.float() / 255.0).flatten(1)], 1)
        return self.out(x)


class MicroPolicy(nn.Module):
    def __init__(self, profile_id: str):
        super().__init__()
        self.spec = get_profile(profile_id).policy
        self.names = [i.name for i in self.spec.inputs]
        width = 25 * FEATURES_SEEN + 25 * 8 + 2
        self.out = nn.Linear(width, self.spec.output_width)

    def forward(self, *inputs):
        x = dict(zip(self.names, inputs))
        flat = [x["features_buffer"][:, :, :FEATURES_SEEN].flatten(1), x["desire_pulse"].flatten(1),
                x["traffic_convention"]]
        return self.out(torch.cat(flat, 1))


def micro_source(profile_id: str, seed: int = 0) -> ExportSource:
    torch.manual_seed(seed)
    models = {"driving_vision": MicroVision(profile_id).eval(), "driving_policy": MicroPolicy(profile_id).eval()}
    return ExportSource(path=Path("micro.pt"), run_id="micro", epoch=1, stage="policy", profile=get_profile(profile_id),
                        models=models, fitted={k: True for k in models}, policy_trained=True)


def export_micro_runtime(profile_id: str, out: Path, camera: tuple[int, int]) -> Path:
    """A runtime export of the micro networks for ``profile_id`` and one camera size in ``out``, with its manifest
    (what ``sptrain install`` reads)."""
    import json

    from sunnypilot_training.export import runtime_export

    source = micro_source(profile_id)
    report = runtime_export.export_runtime(source, out, "CPU", [f"{camera[0]}x{camera[1]}"], log=lambda _: None)
    (out / runtime_export.MANIFEST).write_text(json.dumps(runtime_export.manifest(source, report, "CPU")))
    return out


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Write ``{relative path: text}`` under ``root``, making folders as needed."""
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def install_and_read_manifest(export: Path, checkout: Path, models: Path) -> dict:
    """``sptrain install`` of ``export`` into ``checkout`` (it must succeed); the install's backup manifest."""
    from sunnypilot_training.cli.main import main as sptrain
    from sunnypilot_training.integration.backup import read_manifest

    assert sptrain(["install", "--from-dir", str(export), "--sunnypilot-root", str(checkout)]) == 0
    return read_manifest(sorted((models / ".sptrain_backups").iterdir())[-1])
