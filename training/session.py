"""One training run end to end: settings -> runtime -> stages -> plots -> summary.

Shared by ``python training/train.py`` (Hydra) and ``sptrain train`` (the Hydra compose API): both hand a composed
config to :func:`run_training`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt_io
from . import report
from .config import ReadRecorder, settings_from_cfg, settings_to_dict
from .device import setup_runtime, teardown
from .trainer import Models, run_stages, start_run


def _config_yaml(config: dict) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config))


def _final_plots(models: Models, s, result: dict, out: Path) -> list[Path]:
    from .data import PolicyDataset, ShardSet, VisionDataset, resolve_shards
    from .features import load_or_compute
    from .validation import predict_policy, predict_vision

    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = report.plot_curves(result["history"], plots)
    val_shards = ShardSet(resolve_shards(s.dataset.val_path, "dataset.val_path"), s.dataset.on_corrupt)
    vision_set = VisionDataset(val_shards)
    if len(vision_set) == 0:
        return written
    picks = np.unique(np.linspace(0, len(vision_set) - 1, 3).astype(np.int64))
    device = next(models.vision_ema.model.parameters()).device
    sub = _Subset(vision_set, picks)
    vision_parsed, _ = predict_vision(models.vision_ema.model, sub, device)
    feats = load_or_compute(models.vision_ema.model, val_shards, Path(result["feature_cache"]), device, compute=False)
    policy_set = PolicyDataset(val_shards, feats, models.policy.input_names)
    lookup = {(int(i), int(t)): k for k, (i, t) in enumerate(policy_set.index)}
    policy_picks = np.array([lookup[tuple(int(v) for v in vision_set.index[k])] for k in picks])
    policy_parsed, _ = predict_policy(models.policy_ema.model, _Subset(policy_set, policy_picks), device)
    written.append(report.validation_frames(vision_parsed, policy_parsed, val_shards, vision_set, picks, plots))
    return written


class _Subset:
    """A dataset view over chosen indices (keeps ``index`` for lookups)."""

    def __init__(self, dataset, picks: np.ndarray):
        self.dataset, self.picks = dataset, picks
        self.index = dataset.index[picks]

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, k: int):
        return self.dataset[int(self.picks[k])]


def run_training(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Train from a composed config; returns the result (and the config keys the run read)."""
    settings = settings_from_cfg(cfg)
    s = ReadRecorder(settings)
    runtime = setup_runtime(s.training.device, s.training.precision)
    try:
        out = Path(s.output_dir)
        config = settings_to_dict(settings)
        if runtime.is_main:
            out.mkdir(parents=True, exist_ok=True)
            text = _config_yaml(config)
            print("resolved config:\n" + text)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            name = "config.yaml" if not (out / "config.yaml").exists() else f"config_{stamp}.yaml"
            (out / name).write_text(text)  # every start keeps its own resolved config
            print(f"device: {runtime.device} ({runtime.precision}); world size {runtime.world_size}"
                  + (f"; note: {runtime.note}" if runtime.note else ""))
        models, state, ckpt = start_run(s, runtime, config)
        print_sizes(models, runtime, s.model.name)
        result = run_stages(s, models, state, runtime, ckpt, config, progress=progress)
        last = ckpt_io.latest_checkpoint(out)
        if runtime.is_main:
            result["plots"] = [str(p) for p in _final_plots(models, s, result, out)]
            print(report.format_summary(result, out, last))
        result.update({"run_id": state.run_id, "checkpoint": str(last) if last else None, "keys_read": s.keys_read})
        return result
    finally:
        teardown(runtime)


def print_sizes(models: Models, runtime, model_name: str) -> None:
    from .models.blocks import count_parameters

    if runtime.is_main:
        print(f"model preset {model_name}: vision {count_parameters(models.vision) / 1e6:.2f} M parameters, "
              f"policy {count_parameters(models.policy) / 1e6:.2f} M parameters")
