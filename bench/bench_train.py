"""Training throughput of the models (forward + backward + AdamW step) on synthetic batches of the real shapes.

Usage: python bench/bench_train.py [--size tiny] [--batch 16] [--steps 20] [--device cpu|cuda] [--precision fp32|bf16]

Compare with bench/bench_loader.py (vision samples/s the loader delivers) to see whether loading starves training.
"""

from __future__ import annotations

import argparse
import time

import torch

from sunnypilot_training.contract.constants import FEATURE_LEN
from sunnypilot_training.training.diffusion import DiffusionConfig
from sunnypilot_training.training.models.blocks import count_flops, count_parameters
from sunnypilot_training.training.models.policy import PolicyModel
from sunnypilot_training.training.models.vision import VisionModel
from sunnypilot_training.training.optim import make_optimizer


def vision_batch(b: int, device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {k: v.to(device) for k, v in {
        "img": torch.randint(0, 255, (b, 12, 128, 256), dtype=torch.uint8, generator=g),
        "big_img": torch.randint(0, 255, (b, 12, 128, 256), dtype=torch.uint8, generator=g),
        "lane_lines": torch.randn(b, 4, 33, 2), "lane_lines_prob": torch.ones(b, 4),
        "road_edges": torch.randn(b, 2, 33, 2), "lead": torch.randn(b, 3, 6, 4), "lead_prob": torch.ones(b, 3),
        "pose": torch.randn(b, 6), "road_transform": torch.randn(b, 6), "wide_from_device_euler": torch.randn(b, 3),
        "meta": torch.rand(b, 55).round(), "desire_pred": torch.eye(8)[torch.zeros(b, 4, dtype=torch.long)],
    }.items()}


def policy_batch(b: int, device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in {
        "features_buffer": torch.randn(b, 25, FEATURE_LEN), "desire_pulse": torch.zeros(b, 25, 8),
        "traffic_convention": torch.tensor([[1.0, 0.0]]).repeat(b, 1), "plan": torch.randn(b, 33, 15),
        "desire_state": torch.eye(8)[torch.zeros(b, dtype=torch.long)],
    }.items()}


def throughput(model, batch, steps: int, device, precision: str) -> float:
    opt = make_optimizer(model, 1e-3, 1e-4)
    amp = device.type == "cuda" and precision == "bf16"
    for i in range(steps + 3):
        if i == 3:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss, _ = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * len(next(iter(batch.values()))) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", default="tiny", choices=("tiny", "base"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    args = parser.parse_args()
    device = torch.device(args.device)
    cfg = DiffusionConfig()
    vision = VisionModel("op-0.10.1", args.size, "diffusion", cfg, shared_backbone=args.size == "tiny").to(device)
    policy = PolicyModel("op-0.10.1", args.size, cfg).to(device)
    vb, pb = vision_batch(args.batch, device), policy_batch(args.batch, device)
    img = (vb["img"][:1].cpu(), vb["big_img"][:1].cpu())
    print(f"vision {args.size}: {count_parameters(vision) / 1e6:.2f} M params, "
          f"{count_flops(vision.cpu(), img) / 1e9:.2f} GFLOPs per frame (export form)")
    vision.to(device)
    print("| model | batch | train samples/s |\n|---|---|---|")
    print(f"| vision {args.size} | {args.batch} | {throughput(vision, vb, args.steps, device, args.precision):.1f} |")
    print(f"| policy {args.size} | {args.batch} | {throughput(policy, pb, args.steps, device, args.precision):.1f} |")


if __name__ == "__main__":
    main()
