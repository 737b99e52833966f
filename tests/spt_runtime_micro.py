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
