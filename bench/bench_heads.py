"""Plan heads compared on held-out episodes: the exported mean, and what samples add where the future branches.

Usage: python bench/bench_heads.py CHECKPOINT [CHECKPOINT ...] --shards DIR [--samples 8] [--stride 8]

For each checkpoint the models are stepped through every test shard frame by frame as modeld steps the exported
ones (the vision model on each frame pair, its hidden_state into the feature history); at every ``stride``-th valid
frame the policy's exported output gives the plan mean and std (ADE at 2/5/10 s, 1-sigma coverage), and a
diffusion policy also draws ``samples`` fresh plans: min-over-samples ADE (minADE, how well the samples cover what
happened), overall and on the frames where the future branches (a junction ahead in urban_intersection, a lane
change in lane_change). MDN and regression heads have one mode: their minADE is their ADE. Prints one markdown
row per checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from sunnypilot_training.contract.constants import T_IDXS, Desire, Plan
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames, read_labels
from sunnypilot_training.evaluation.metrics import plan_errors
from sunnypilot_training.evaluation.model_runner import ExportedModels, ModeldState
from sunnypilot_training.export.checkpoint_models import load_export_source
from sunnypilot_training.training.models.blocks import DiffusionHead, count_flops


class TorchModel:
    """Named unbatched inputs -> flat output, over a torch model on ``device`` (the exported models' interface)."""

    def __init__(self, model, names: list[str], device: torch.device | str = "cpu"):
        self.model, self.names, self.device, self.runtime = model.to(device).eval(), names, device, "torch"

    @torch.no_grad()
    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        tensors = (torch.from_numpy(np.ascontiguousarray(inputs[n]))[None].to(self.device) for n in self.names)
        return self.model(*tensors).float().cpu().numpy().reshape(-1)


def branching(scenario: str, labels: dict, t: int) -> bool:
    """Frames whose next 10 s hold a choice: a lane change under way or about to start, or a junction turn."""
    future = labels["desire"][t:t + 200].argmax(axis=1)
    if "lane_change" in scenario:
        return bool(np.isin(future, (Desire.LANE_CHANGE_LEFT, Desire.LANE_CHANGE_RIGHT)).any())
    if "urban_intersection" in scenario:
        return bool(np.isin(future, (Desire.TURN_LEFT, Desire.TURN_RIGHT)).any()) or \
            abs(float(labels["plan"][t, -1, Plan.T_FROM_CURRENT_EULER.start + 2])) > 0.5
    return False


def evaluate(checkpoint: str, shards: list[Path], n_samples: int, stride: int, device: str = "cpu") -> dict:
    source = load_export_source(checkpoint)
    names = ("driving_vision", "driving_policy")
    adapters = [TorchModel(source.models[n], [i.name for i in source.spec(n).inputs], device) for n in names]
    models = ExportedModels(Path(checkpoint).parent, source.profile, *adapters)
    policy = source.models["driving_policy"]
    sampling = isinstance(policy.plan_head, DiffusionHead)
    gen = torch.Generator(device).manual_seed(0)
    rows = {"pred": [], "std": [], "true": [], "min": [], "branch": []}
    for path in shards:
        shard = open_shard(path)
        labels, scenario = read_labels(shard), str(shard.attrs.get("scenario"))
        state = ModeldState(models, labels["traffic_convention"][0])
        desire = labels["desire"].argmax(axis=1)
        valid = set(np.flatnonzero(labels["valid"])[::stride].tolist())
        road, wide = read_frames(shard, "img", np.arange(shard.n_frames)), read_frames(shard, "big_img",
                                                                                        np.arange(shard.n_frames))
        for t in range(shard.n_frames):
            step = state.step(road[t], wide[t], int(desire[t]), float(labels["ego_speed"][t]), run_policy=t in valid)
            if step.policy_raw is None:
                continue
            parsed = parse_outputs(source.profile.policy, step.policy_raw[None])
            true = labels["plan"][t][None, :, Plan.POSITION]
            rows["pred"].append(parsed["plan"][0, :, Plan.POSITION])
            rows["std"].append(parsed["plan_stds"][0, :, Plan.POSITION])
            rows["true"].append(true[0])
            rows["branch"].append(branching(scenario, labels, t))
            if sampling:
                inputs = [torch.from_numpy(step.policy_inputs[i.name])[None].to(device)
                          for i in source.spec(names[1]).inputs]
                samples = policy.sample(*inputs, n_samples=n_samples, generator=gen)[0, :, :, Plan.POSITION].cpu()
                ade = [plan_errors(s[None].numpy(), true)["ade_5s"] for s in samples]
                rows["min"].append(min(ade))
            else:
                rows["min"].append(plan_errors(rows["pred"][-1][None], true)["ade_5s"])
    pred, true, std = (np.stack(rows[k]) for k in ("pred", "true", "std"))
    branch, min_ade = np.asarray(rows["branch"]), np.asarray(rows["min"])
    errors = plan_errors(pred, true)
    out = {f"ade_{h}s": errors[f"ade_{h}s"] for h in ("2", "5", "10")}
    out["coverage_1sigma"] = float((np.abs(pred[:, 1:] - true[:, 1:]) <= std[:, 1:]).mean())
    out["min_ade_5s"] = float(min_ade.mean())
    out["ade_5s_branching"] = plan_errors(pred[branch], true[branch])["ade_5s"] if branch.any() else float("nan")
    out["min_ade_5s_branching"] = float(min_ade[branch].mean()) if branch.any() else float("nan")
    out["branching_frames"], out["frames"] = int(branch.sum()), len(branch)
    inputs = tuple(torch.zeros(i.shape) for i in source.spec(names[1]).inputs)
    out["policy_gflops"] = count_flops(policy.cpu(), inputs) / 1e9
    out["head"] = getattr(policy, "head_type", "diffusion")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--shards", required=True)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--stride", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    shards = find_shards([args.shards])
    print("| checkpoint | head | ADE 2 s | ADE 5 s | ADE 10 s | 1σ coverage | minADE 5 s (8 samples) | ADE 5 s "
          "branching | minADE 5 s branching | policy GFLOPs |\n|---|---|---|---|---|---|---|---|---|---|")
    for ckpt in args.checkpoints:
        r = evaluate(ckpt, shards, args.samples, args.stride)
        print(f"| {ckpt} | {r['head']} | {r['ade_2s']:.2f} | {r['ade_5s']:.2f} | {r['ade_10s']:.2f} | "
              f"{r['coverage_1sigma']:.2f} | {r['min_ade_5s']:.2f} | {r['ade_5s_branching']:.2f} | "
              f"{r['min_ade_5s_branching']:.2f} | {r['policy_gflops']:.3f} |", flush=True)
    print(f"(T_IDXS to {T_IDXS[-1]:g} s; branching frames: {r['branching_frames']} of {r['frames']})")


if __name__ == "__main__":
    main()
