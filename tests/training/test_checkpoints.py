"""Checkpoints across versions and the EMA of weights and buffers."""

from __future__ import annotations

import pytest
import torch

from sunnypilot_training.training.checkpoint import _vision_size_args, load_weights, weights_hash
from sunnypilot_training.training.models import VisionModel, build_models
from sunnypilot_training.training.optim import Ema


def test_checkpoints_before_format_3_rebuild_batch_norm_backbones() -> None:
    """Formats 1-2 trained BatchNorm backbones: their model_args say so, and their weights load (uncalibrated)."""
    old = {"vision": {"profile_id": "op-0.10.1", "size": "tiny", "heads": "diffusion", "diffusion": {}},
           "policy": {"profile_id": "op-0.10.1", "size": "tiny", "diffusion": {}}}
    args = _vision_size_args(_vision_size_args(old, norm="batch"), frame_difference=False)
    assert args["vision"]["size"] == {"preset": "tiny", "norm": "batch", "frame_difference": False}
    vision, policy = build_models(args)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in vision.modules())
    state = {k: v for k, v in vision.state_dict().items() if not k.endswith("std_scale")}  # as a format-2 file
    fresh = build_models(args)[0]
    load_weights(fresh, state)
    assert weights_hash(fresh) == weights_hash(vision)
    state.pop(next(iter(state)))
    with pytest.raises(RuntimeError, match="missing"):
        load_weights(fresh, state)


def test_format_3_checkpoints_rebuild_stems_without_the_frame_difference() -> None:
    old_size = {**dict(VisionModel("op-0.10.1", "tiny").model_args["size"]), "preset": "tiny"}
    old_size.pop("frame_difference")
    old = {"vision": {"profile_id": "op-0.10.1", "size": old_size, "heads": "diffusion", "diffusion": {}},
           "policy": {"profile_id": "op-0.10.1", "size": "tiny", "diffusion": {}}}
    vision = build_models(_vision_size_args(old, frame_difference=False))[0]
    new = VisionModel("op-0.10.1", {"preset": "tiny", "frame_difference": True})
    assert vision.backbones[0].features[0][0].in_channels == 12
    assert new.backbones[0].features[0][0].in_channels == 18
    img = torch.randint(0, 256, (2, 12, 128, 256), dtype=torch.uint8)
    assert torch.isfinite(new(img, img)).all()


def test_weights_hash_ignores_the_calibration() -> None:
    """The feature cache is keyed by the vision weights; calibrating stds changes no feature."""
    model = VisionModel("op-0.10.1", "tiny")
    before = weights_hash(model)
    model.trajectory_heads["lane_lines"].std_scale.fill_(2.0)
    assert weights_hash(model) == before


def test_ema_averages_floating_buffers_and_copies_the_rest() -> None:
    model = torch.nn.BatchNorm1d(2)
    ema = Ema(model, decay=0.5)
    with torch.no_grad():
        model.running_mean.fill_(4.0)
        model.weight.fill_(3.0)
        model.num_batches_tracked.fill_(7)
    ema.update(model)
    torch.testing.assert_close(ema.model.running_mean, torch.full((2,), 2.0))  # 0.5 * 0 + 0.5 * 4
    torch.testing.assert_close(ema.model.weight, torch.full((2,), 2.0))  # 0.5 * 1 + 0.5 * 3
    assert int(ema.model.num_batches_tracked) == 7
