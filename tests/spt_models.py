"""Tiny real checkpoints and exports for the tests (export, install, closed-loop driving)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sunnypilot_training.cli import export_cmd
from sunnypilot_training.contract.constants import DESIRE_LEN, IDX_N, IMG_SHAPE, META_WIDTH
from sunnypilot_training.errors import run_guarded
from sunnypilot_training.training.checkpoint import save_atomic, weights_hash
from sunnypilot_training.training.config import load_config, settings_from_cfg, settings_to_dict
from sunnypilot_training.training.device import Runtime
from sunnypilot_training.training.trainer import RunState, checkpoint_dict, make_models

RUN_ID, EPOCH = "tiny0001", 3


def fitted_label_stats(n: int = 32, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Plausible label arrays to fit the normalisers (physical units out of the exported graph)."""
    rng = np.random.default_rng(seed)
    lines = np.stack([np.array([-5.4, -1.8, 1.8, 5.4])[None, :, None] + rng.normal(0, 0.3, (n, 4, 33)),
                      np.full((n, 4, 33), 1.22)], axis=-1)
    vision = {
        "lane_lines": lines, "road_edges": lines[:, [0, 3]] * 1.3, "lead_prob": (rng.random((n, 3)) > 0.3) * 1.0,
        "lead": np.stack([rng.uniform(10, 60, (n, 3, 6)), rng.normal(0, 0.5, (n, 3, 6)), rng.uniform(5, 25, (n, 3, 6)),
                          rng.normal(0, 0.5, (n, 3, 6))], axis=-1),
        "pose": rng.normal(0, 1, (n, 6)) + [15, 0, 0, 0, 0, 0], "road_transform": rng.normal(0, 0.05, (n, 6)),
        "wide_from_device_euler": rng.normal(0, 0.01, (n, 3)),
    }
    plans = rng.normal(0, 1, (n, 33, 15)) + np.linspace(0, 150, 33)[None, :, None] * (np.arange(15) == 0)
    return vision, plans


def make_tiny_checkpoint(path: Path, overrides: tuple[str, ...] = (), run_id: str = RUN_ID, epoch: int = EPOCH,
                         seed: int = 0, fitted: bool = True) -> Path:
    """A real checkpoint of tiny untrained models (1 DDIM step, 2 export samples); ``fitted``: normalisers fitted to
    plausible labels and the checkpoint names the vision weights its policy trained on (as after the policy stage)."""
    settings = settings_from_cfg(load_config(["diffusion.steps=1", "diffusion.export_samples=2",
                                              f"output_dir={path.parent}", *overrides]))
    torch.manual_seed(seed)
    models = make_models(settings, Runtime(torch.device("cpu"), "fp32"))
    key = None
    if fitted:
        vision_labels, plans = fitted_label_stats()
        models.vision.fit_normalizers(vision_labels)
        models.policy.fit_normalizers(plans)
        models.vision_ema.model.load_state_dict(models.vision.state_dict())
        models.policy_ema.model.load_state_dict(models.policy.state_dict())
        key = weights_hash(models.vision_ema.model)  # a policy-stage checkpoint names the vision weights it used
    state = RunState(run_id=run_id, stage="policy", epoch=epoch)
    ckpt = checkpoint_dict(models, state, None, settings_to_dict(settings), settings.contract.profile, key)
    return save_atomic(ckpt, path)


def sptrain_export(argv: list[str]) -> int:
    """`sptrain export ...` through the command's own parser."""
    parser = argparse.ArgumentParser(prog="sptrain")
    export_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_guarded(f"sptrain {args.command}", args.func, args)


def vision_batch(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random but plausible VisionDataset batch: uint8 frames and every vision label."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g)

    lines_y = torch.tensor([-5.4, -1.8, 1.8, 5.4])[None, :, None] + 0.3 * rand(batch, 4, IDX_N)
    lines = torch.stack([lines_y, torch.full_like(lines_y, 1.22)], dim=-1)  # (B, 4, 33, 2)
    edges = torch.stack([torch.tensor([-7.0, 7.0])[None, :, None] + rand(batch, 2, IDX_N),
                         torch.full((batch, 2, IDX_N), 1.2)], dim=-1)
    lead_prob = (rand(batch, 3) > 0.4).float()
    lead = torch.stack([20 + 40 * rand(batch, 3, 6), rand(batch, 3, 6) - 0.5, 10 + 10 * rand(batch, 3, 6),
                        rand(batch, 3, 6) - 0.5], dim=-1) * lead_prob[:, :, None, None]
    desire = torch.nn.functional.one_hot(torch.randint(0, DESIRE_LEN, (batch, 4), generator=g), DESIRE_LEN)
    return {
        "img": torch.randint(0, 256, (batch,) + IMG_SHAPE[1:], dtype=torch.uint8, generator=g),
        "big_img": torch.randint(0, 256, (batch,) + IMG_SHAPE[1:], dtype=torch.uint8, generator=g),
        "lane_lines": lines, "lane_lines_prob": (rand(batch, 4) > 0.3).float(), "road_edges": edges,
        "lead": lead, "lead_prob": lead_prob,
        "pose": torch.cat([10 + 10 * rand(batch, 1), 0.1 * rand(batch, 5)], dim=1),
        "road_transform": torch.cat([torch.zeros(batch, 2), 1.2 + 0.05 * rand(batch, 1), 0.02 * rand(batch, 3)], 1),
        "wide_from_device_euler": 0.01 * rand(batch, 3), "meta": (rand(batch, META_WIDTH) > 0.8).float(),
        "desire_pred": desire.float(),
    }
