"""Do the frames say where the car is in its lane, and does a vision model learn it? Trains from scratch, on the
training shards, either

* ``--model backbone``: one tiny road-camera backbone (the vision model's own ``Backbone``, frames t-4 and t) with a
  linear readout of the lane centre (the middle of the left and right lines about the car) at 0 m and 10 m ahead,
  nothing else - what the frames hold at this resolution, for a network of this size; or
* ``--model vision``: the whole tiny vision model (op-0.10.0, motion volume, its every head and loss; ``--weights``
  sets ``loss_weights``, e.g. ``'{"pose": 5, "lane_centre": 5}'``), read through its lane_lines mean,

or, with ``--checkpoint CKPT``, trains nothing and reads a trained checkpoint's vision model (its EMA weights):
through its ``lane_channel`` readout where it has one (``--read lines``: through its lane_lines mean),

and prints, every ``--eval-every`` steps (or once), R^2 of the lane centre (1 - error^2 / spread^2; 0: no better
than always saying the average) per scenario on every 3rd training shard and on the test shards (every 4th valid
frame).
Batches of 32, AdamW at 1e-3 (vision: warm-up and cosine decay over ``--steps``, gradients clipped as the trainer
does); torch's seed 0. Urban junctions are left out of the table: their labelled centre does not vary.

Usage: python bench/lane_centre_probe.py TRAIN_DIR TEST_DIR [--model backbone|vision] [--steps 1200]
       [--eval-every 600] [--weights JSON] [--checkpoint CKPT [--read channel|lines]]
(the package importable as ``sunnypilot_training``; run from bench/'s parent, which puts bench/ on the path)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.data import DataLoader
from yaw_probe import OFFSET_AT_M as AT_M  # the lane centre at 0 and 10 m ahead, read alike by both probes
from yaw_probe import centre_at_offsets

from sunnypilot_training.contract.profiles import VISION_MODEL
from sunnypilot_training.episodes.shards import find_shards
from sunnypilot_training.export.checkpoint_models import load_export_source
from sunnypilot_training.training.data import VISION_TARGET_KEYS, ShardSet, VisionDataset
from sunnypilot_training.training.diffusion import DiffusionConfig
from sunnypilot_training.training.epoch_loop import GRAD_CLIP_NORM
from sunnypilot_training.training.models.vision import (
    IMG_OFFSET,
    IMG_SCALE,
    Backbone,
    VisionModel,
    VisionSize,
    lane_channel_index,
    lane_reading_m,
)

BATCH = 32
SCENARIOS = ("curvy_road", "highway_follow", "lane_change")


class Readout(torch.nn.Module):
    """The backbone alone: road frames -> lane centre at AT_M (normalised by the training labels' mean and sd)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        super().__init__()
        self.backbone = Backbone(VisionSize())
        self.out = torch.nn.Linear(VisionSize().camera_dim, len(AT_M))
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, img: torch.Tensor) -> torch.Tensor:  # metres
        return self.out(self.backbone((img.float() - IMG_OFFSET) * IMG_SCALE)) * self.std + self.mean

    def loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        target = torch.from_numpy(centre_at_offsets(batch["lane_lines"].numpy()))
        loss = ((self(batch["img"]) - target) / self.std).square().mean()
        return loss, {"centre": float(loss.detach())}


def read_centres(model: torch.nn.Module, shards: ShardSet, every: int, channel: bool = False
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """scenario -> (read, labelled) lane centres (n, len(AT_M)) on every 4th valid frame of every ``every``-th shard."""
    model.eval()
    out: dict[str, list] = {}
    with torch.no_grad():
        for i in range(0, len(shards.paths), every):
            labels = shards.labels[i]
            ts = np.flatnonzero(labels["valid"])[::4]
            img = torch.from_numpy(shards.frame_pairs(i, "img", ts))
            if isinstance(model, Readout):
                read = model(img).numpy()
            else:
                hidden = model.features(img, torch.from_numpy(shards.frame_pairs(i, "big_img", ts)))
                read = lane_reading_m(hidden, lane_channel_index(model.speed_channel)).numpy()[:, :len(AT_M)] \
                    if channel else \
                    centre_at_offsets(model.trajectory_heads["lane_lines"].mean(hidden).numpy())
            scenario = str(shards.shard(i).attrs.get("scenario"))
            out.setdefault(scenario, []).append((read, centre_at_offsets(labels["lane_lines"][ts])))
    model.train()
    return {k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for k, v in out.items()}


def report(tag: str, model: torch.nn.Module, train: ShardSet, test: ShardSet, channel: bool = False) -> None:
    for split, shards, every in (("train", train, 3), ("test", test, 1)):
        for scenario, (read, true) in sorted(read_centres(model, shards, every, channel).items()):
            if scenario not in SCENARIOS:
                continue
            r2 = 1.0 - ((read - true) ** 2).mean(0) / true.var(0)
            cells = "  ".join(f"R2 {x:g} m {r:5.2f}" for x, r in zip(AT_M, r2))
            print(f"{tag} {split:5s} {scenario:15s} {cells}  (labelled spread at 0 m {true[:, 0].std():.2f} m)",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("train_dir")
    ap.add_argument("test_dir")
    ap.add_argument("--model", choices=("backbone", "vision"), default="backbone")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--eval-every", type=int, default=600)
    ap.add_argument("--weights", default='{"pose": 5}', help="vision: loss_weights as JSON")
    ap.add_argument("--checkpoint", help="read this trained checkpoint's vision model instead of training one")
    ap.add_argument("--read", choices=("channel", "lines"), default="channel",
                    help="--checkpoint: read the lane_channel readout (where the model has one) or the lane_lines mean")
    args = ap.parse_args()
    torch.manual_seed(0)
    train = ShardSet(sorted(find_shards(args.train_dir)), "error", 8.0)
    test = ShardSet(sorted(find_shards(args.test_dir)), "error", 2.0)
    if args.checkpoint:
        vision = load_export_source(args.checkpoint).models[VISION_MODEL]
        channel = args.read == "channel" and vision.lane_position is not None
        report("channel" if channel else "lines", vision, train, test, channel)
        return
    labels = {k: np.concatenate([lab[k][lab["valid"]] for lab in train.labels]) for k in VISION_TARGET_KEYS}
    if args.model == "backbone":
        c = centre_at_offsets(labels["lane_lines"])
        model: torch.nn.Module = Readout(c.mean(0), c.std(0))
        opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-4)
        sched = None
    else:
        model = VisionModel("op-0.10.0", "tiny", "diffusion", DiffusionConfig(), loss_weights=json.loads(args.weights),
                            motion_volume=True, motion_grid={"row_stride": 2, "col_stride": 2, "shift_step": 2})
        model.fit_normalizers(labels)
        opt = torch.optim.AdamW(model.parameters(), 1e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50) * 0.5 * (
            1.0 + np.cos(np.pi * min(s, args.steps) / args.steps)))
    data = VisionDataset(train, augment=args.model == "vision")
    step, start = 0, time.perf_counter()
    while step < args.steps:
        for batch in DataLoader(data, batch_size=BATCH, shuffle=True):
            loss, parts = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            if sched is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
            opt.step()
            if sched is not None:
                sched.step()
            step += 1
            if step % 100 == 0:
                print(f"step {step} ({time.perf_counter() - start:.0f} s) loss {float(loss.detach()):.3f}", flush=True)
            if step % args.eval_every == 0 or step == args.steps:
                report(f"step {step}", model, train, test)
            if step >= args.steps:
                break


if __name__ == "__main__":
    main()
