"""GPU check, for a machine with a CUDA GPU: training throughput, a scaled-up run of the quick recipe, tinygrad.

Usage (repository root; the package importable as ``sunnypilot_training``, e.g. through a folder holding a link of
that name to the repository):

    python bench/gpu_check.py --out DIR [--episodes 24] [--vision-epochs 8] [--workers 14]

1. the environment: Python, torch, the GPU, which dependencies import;
2. throughput: vision and policy, tiny and base, fp32 and bf16 autocast, on synthetic batches of the real shapes;
3. a scaled-up run of the quick preset's recipe (the tiny models, bf16 on the GPU): ``--episodes`` 20-second
   episodes per scenario of the quick mix collected on all cores, then the trainer, then the held-out evaluation
   (test seeds the run never saw) with the torch models stepped frame by frame as modeld steps the exported ones;
4. tinygrad on CUDA: the exported vision model run by tinygrad against torch (when onnx and tinygrad import).

Each part is independent: a part whose dependencies are missing is reported and skipped. Everything goes to
``DIR/gpu_check.json`` and the console.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from bench_train import policy_batch, throughput, vision_batch

MODULES = ("numpy", "torch", "zarr", "numcodecs", "hydra", "omegaconf", "tqdm", "onnx", "onnxruntime", "tinygrad",
           "matplotlib")


def environment() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count(),
           "torch": torch.__version__, "cuda": torch.version.cuda, "gpu": None, "modules": {}}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out["gpu"] = {"name": p.name, "memory_gb": round(p.total_memory / 1e9, 1), "capability": f"{p.major}.{p.minor}"}
    for name in MODULES:
        try:
            out["modules"][name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception as exc:  # reported, not fatal: the parts that need it are skipped
            out["modules"][name] = f"MISSING ({type(exc).__name__}: {exc})"[:160]
    return out


def throughputs(device: torch.device) -> list[dict]:
    from sunnypilot_training.training.diffusion import DiffusionConfig
    from sunnypilot_training.training.models import PolicyModel, VisionModel

    rows = []
    for size in ("tiny", "base"):
        for precision in ("fp32", "bf16"):
            vision = VisionModel("op-0.10.1", size, "diffusion", DiffusionConfig(), shared_backbone=size == "tiny")
            policy = PolicyModel("op-0.10.1", size, DiffusionConfig())
            v = throughput(vision.to(device), vision_batch(64, device), 20, device, precision)
            p = throughput(policy.to(device), policy_batch(256, device), 20, device, precision)
            rows.append({"size": size, "precision": precision, "vision_samples_s": round(v, 1),
                         "policy_samples_s": round(p, 1)})
            print(rows[-1], flush=True)
    return rows


def scaled_run(out: Path, args, device: torch.device) -> dict:
    from sunnypilot_training.cli.collect_choices import TEST_SEED_OFFSET, VAL_SEED_OFFSET
    from sunnypilot_training.cli.pipeline import QUICK_SCENARIOS
    from sunnypilot_training.collector.collect import collect, schedule_episodes

    data, result = out / "data", {}
    start = time.perf_counter()
    for split, episodes, seed, seconds in (("train", args.episodes, 0, 20.0), ("val", 2, VAL_SEED_OFFSET, 20.0),
                                           ("test", args.test_episodes, TEST_SEED_OFFSET, 15.0)):
        specs = [s for sc in QUICK_SCENARIOS for s in schedule_episodes("builtin", sc, episodes, data / split, seed,
                                                                        seconds)]
        summary = collect(specs, workers=args.workers, progress=False)
        summary.raise_for_failures()
        result[f"collect_{split}"] = {"episodes": len(specs), "frames": summary.frames,
                                      "frames_per_s": round(summary.frames / summary.wall_s, 1)}
        print(split, result[f"collect_{split}"], flush=True)
    result["collect_s"] = round(time.perf_counter() - start, 1)
    result.update(train_and_evaluate(out / "train", data, args, device, []))
    return result


def train_and_evaluate(train_dir: Path, data: Path, args, device: torch.device, extra: list[str]) -> dict:
    """The quick recipe at scale (plus ``extra`` overrides) on ``data``; the held-out evaluation of its checkpoint."""
    from sunnypilot_training.episodes.shards import find_shards
    from sunnypilot_training.training.config import load_config, path_override
    from sunnypilot_training.training.trainer import run_training

    overrides = [path_override("dataset.train_path", data / "train"), path_override("dataset.val_path", data / "val"),
                 path_override("output_dir", train_dir), "model=tiny",
                 f"training.vision_epochs={args.vision_epochs}", "training.policy_epochs=8",
                 "training.batch_size=64", "training.lr=2e-3", "training.warmup_steps=100",
                 f"training.num_workers={min(args.workers, 12)}", f"training.precision={args.precision}",
                 f"training.device={device.type}", *extra]
    start = time.perf_counter()
    trained = run_training(load_config(overrides), progress=False)
    result = {"overrides": extra, "train_s": round(time.perf_counter() - start, 1),
              "train_timings_s": trained["timings_s"], "checkpoint": trained["checkpoint"]}
    result["evaluation"] = evaluate_torch(trained["checkpoint"], find_shards([data / "test"]), device)
    return result


def heads(out: Path, args, device: torch.device, run: dict, started: float) -> dict:
    """MDN and regression heads trained like the diffusion run on the same data; the three compared by bench_heads."""
    from bench_heads import evaluate as head_table

    from sunnypilot_training.episodes.shards import find_shards

    if "checkpoint" not in run:
        return {"skipped": "the diffusion run did not finish"}
    result, checkpoints = {}, {"diffusion": run["checkpoint"]}
    for head in ("mdn", "regression"):
        needed = run["train_s"] + run["evaluation"]["seconds"] + 30
        if time.perf_counter() - started + needed > args.deadline_s:
            result[head] = {"skipped": f"{needed:.0f} s needed, past the {args.deadline_s} s deadline"}
            continue
        result[head] = train_and_evaluate(out / f"train_{head}", out / "data", args, device,
                                          [f"vision.heads={head}", f"policy.head={head}"])
        checkpoints[head] = result[head]["checkpoint"]
        print(head, result[head]["evaluation"]["all"], flush=True)
    shards = find_shards([out / "data" / "test"])
    result["table"] = {}
    for head, checkpoint in checkpoints.items():
        result["table"][head] = head_table(checkpoint, shards, 8, 8, device.type)
        print(head, result["table"][head], flush=True)
    return result


def evaluate_torch(checkpoint: str, shards: list[Path], device: torch.device) -> dict:
    from bench_heads import TorchModel

    from sunnypilot_training.evaluation.model_runner import ExportedModels
    from sunnypilot_training.evaluation.open_loop import evaluate_models, verdicts
    from sunnypilot_training.export.checkpoint_models import load_export_source

    source = load_export_source(checkpoint)
    models = ExportedModels(Path(checkpoint).parent, source.profile,
                            *(TorchModel(source.models[n], [i.name for i in source.spec(n).inputs], device)
                              for n in ("driving_vision", "driving_policy")))
    start = time.perf_counter()
    result = evaluate_models(models, shards)
    summary = {k: round(v["mean"], 3) for k, v in result["summary"]["all"].items()}
    print("held-out:", summary, flush=True)
    return {"seconds": round(time.perf_counter() - start, 1), "all": summary, "verdicts": verdicts(result["summary"]),
            "per_scenario": {s: {k: round(v["mean"], 3) for k, v in st.items()}
                             for s, st in result["summary"].items() if s != "all"}}


def tinygrad_cuda(out: Path, checkpoint: str | None) -> dict:
    os.environ.setdefault("DEV", "CUDA" if torch.cuda.is_available() else "CPU")
    from tinygrad import Tensor
    from tinygrad.nn.onnx import OnnxRunner

    from sunnypilot_training.contract.profiles import get_profile
    from sunnypilot_training.export import checks, onnx_export
    from sunnypilot_training.export.checkpoint_models import load_export_source
    from sunnypilot_training.training.models import VisionModel

    if checkpoint:
        source = load_export_source(checkpoint)
        model, spec = source.models["driving_vision"], source.spec("driving_vision")
    else:
        model, spec = VisionModel("op-0.10.1", "tiny").eval(), get_profile("op-0.10.1").vision
    inputs = checks.parity_inputs(spec)
    tensors = tuple(torch.from_numpy(inputs[i.name]) for i in spec.inputs)
    path = onnx_export.export_to_onnx(model, spec, tensors, out / "driving_vision.onnx", "gpu-check")
    with torch.no_grad():
        reference = model(*tensors).numpy()
    runner = OnnxRunner(str(path))
    feeds = {k: Tensor(v) for k, v in inputs.items()}
    first = list(runner(feeds).values())[0].numpy()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        list(runner(feeds).values())[0].numpy()
        times.append(time.perf_counter() - start)
    return {"device": os.environ["DEV"], "max_abs_diff_vs_torch": float(np.abs(first - reference).max()),
            "ms_per_call_unjitted": round(1e3 * float(np.median(times)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--episodes", type=int, default=24, help="training episodes per scenario")
    parser.add_argument("--test-episodes", type=int, default=8, help="held-out episodes per scenario")
    parser.add_argument("--vision-epochs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 2) - 2, 1))
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--skip", nargs="*", default=[], choices=("throughput", "run", "tinygrad", "heads"))
    parser.add_argument("--deadline-s", type=float, default=520.0,
                        help="the heads comparison trains another head only if it can finish by then")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    report: dict = {"environment": environment()}
    print(json.dumps(report["environment"], indent=1), flush=True)
    started = time.perf_counter()
    parts = [("throughput", lambda: throughputs(device)), ("run", lambda: scaled_run(out, args, device)),
             ("tinygrad", lambda: tinygrad_cuda(out, report.get("run", {}).get("checkpoint"))),
             ("heads", lambda: heads(out, args, device, report.get("run", {}), started))]
    for name, part in parts:
        if name in args.skip:
            continue
        start = time.perf_counter()
        try:
            report[name] = part()
        except Exception as exc:  # each part stands alone: report the failure and go on
            traceback.print_exc()
            report[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(f"--- {name}: {time.perf_counter() - start:.0f} s", flush=True)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
