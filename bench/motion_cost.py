"""What the motion volume costs a vision training step on this machine: the tiny vision model's features, forward
and backward, on a batch of random frames, with the volume on the default (coarse) grid, on the full grid, and
without it. The three are timed in turns, so a noisy machine slows them alike; the ratios are what to compare.

Usage: python bench/motion_cost.py [--batch 32] [--repeats 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from sunnypilot_training.training.config import COARSE_MOTION_GRID
from sunnypilot_training.training.models import VisionModel

VARIANTS = {"coarse grid (default)": {"motion_volume": True, "motion_grid": COARSE_MOTION_GRID},
            "full grid": {"motion_volume": True, "motion_grid": None},
            "no volume": {"motion_volume": False}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {name: VisionModel("op-0.10.1", heads="diffusion", **kw) for name, kw in VARIANTS.items()}
    img, big_img = (torch.randint(0, 256, (args.batch, 12, 128, 256), dtype=torch.uint8) for _ in range(2))

    def step(model: VisionModel) -> float:
        start = time.perf_counter()
        model.zero_grad()
        model.features(img, big_img).square().mean().backward()
        return time.perf_counter() - start

    for model in models.values():
        step(model)  # warm-up
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            times[name].append(step(model))
    base = min(times["no volume"])
    print(f"vision features forward + backward, batch {args.batch}, {args.threads} threads, "
          f"best of {args.repeats}:")
    for name, t in times.items():
        print(f"  {name:22s} {min(t):.3f} s  ({min(t) / base:.2f}x without the volume)")


if __name__ == "__main__":
    main()
