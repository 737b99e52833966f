"""After training: PNG plots (loss curves, validation metrics against baselines, validation frames with predicted
and true lane lines and plan) and the one-screen summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # no pyplot: files only, whatever the platform's display

from ..contract import camera, yuv
from ..episodes import pictures
from .data import PolicyDataset, ShardSet, VisionDataset, resolve_shards
from .features import load_or_compute
from .validation import predict_policy, predict_vision

PRED_PALETTE = {"lane": [(255, 0, 255)] * 4, "edge": (160, 0, 255), "plan": (255, 80, 40), "lead": (255, 0, 255)}
BASELINE_PAIRS = (("plan_ade_10s", "plan_ade_10s_cv", "plan ADE 10 s (m)"),
                  ("plan_fde_10s", "plan_fde_10s_cv", "plan FDE 10 s (m)"),
                  ("lane_left_err_60m", "lane_left_err_60m_straight", "left line @60 m (m)"),
                  ("lane_right_err_60m", "lane_right_err_60m_straight", "right line @60 m (m)"))


class _Subset:
    """A dataset view over chosen indices (keeps ``index`` for lookups)."""

    def __init__(self, dataset, picks: np.ndarray):
        self.dataset, self.picks = dataset, picks
        self.index = dataset.index[picks]

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, k: int):
        return self.dataset[int(self.picks[k])]


def final_plots(vision_model, policy_model, dataset_settings, result: dict, out: Path) -> list[Path]:
    """Loss curves, validation metrics against baselines and three validation frames with predictions drawn on."""
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = plot_curves(result["history"], plots)
    val_shards = ShardSet(resolve_shards(dataset_settings.val_path, "dataset.val_path"), dataset_settings.on_corrupt)
    vision_set = VisionDataset(val_shards)
    if len(vision_set) == 0:
        return written
    picks = np.unique(np.linspace(0, len(vision_set) - 1, 3).astype(np.int64))
    device = next(vision_model.parameters()).device
    vision_parsed, _ = predict_vision(vision_model, _Subset(vision_set, picks), device)
    feats = load_or_compute(vision_model, val_shards, Path(result["feature_cache"]), device, compute=False)
    policy_set = PolicyDataset(val_shards, feats, policy_model.input_names)
    lookup = {(int(i), int(t)): k for k, (i, t) in enumerate(policy_set.index)}
    policy_picks = np.array([lookup[tuple(int(v) for v in vision_set.index[k])] for k in picks])
    policy_parsed, _ = predict_policy(policy_model, _Subset(policy_set, policy_picks), device)
    written.append(validation_frames(vision_parsed, policy_parsed, val_shards, vision_set, picks, plots))
    return written


def plot_curves(history: list[dict[str, Any]], out: Path) -> list[Path]:
    written = []
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, stage in zip(axes, ("vision", "policy")):
        rows = [r for r in history if r["stage"] == stage]
        for key in sorted({k for r in rows for k in r if k.startswith("train_")}):
            ax.plot([r["epoch"] for r in rows], [r.get(key, np.nan) for r in rows], marker="o", label=key[6:])
        ax.set_title(f"{stage} training loss")
        ax.set_xlabel("epoch")
        if rows:
            ax.legend(fontsize=7)
    fig.tight_layout()
    written.append(out / "loss_curves.png")
    fig.savefig(written[-1], dpi=100)
    final = {k: v for r in history for k, v in r.items() if k.startswith("val_")}
    pairs = [(label, final[f"val_{m}"], final[f"val_{b}"]) for m, b, label in BASELINE_PAIRS
             if f"val_{m}" in final and f"val_{b}" in final]
    if pairs:
        fig = Figure(figsize=(7, 3.5))
        ax = fig.subplots()
        x = np.arange(len(pairs))
        ax.bar(x - 0.2, [p[1] for p in pairs], 0.4, label="model")
        ax.bar(x + 0.2, [p[2] for p in pairs], 0.4, label="baseline")
        ax.set_xticks(x, [p[0] for p in pairs], fontsize=8)
        ax.set_title("validation error: model vs baseline (lower is better)")
        ax.legend()
        fig.tight_layout()
        written.append(out / "val_vs_baselines.png")
        fig.savefig(written[-1], dpi=100)
        return written


def validation_frames(vision_parsed: dict, policy_parsed: dict | None, shards, dataset, indices, out: Path) -> Path:
    """Road frames with true labels (default colours) and predictions (magenta / orange) drawn on."""
    rows = []
    for row, k in enumerate(indices):
        i, t = (int(v) for v in dataset.index[k])
        labels = shards.labels[i]
        y = yuv.six_channel_to_y(shards.frame_pairs(i, "img", [t])[0, 6:])
        pic = pictures.overlay_labels(y, labels, t, camera.MEDMODEL)
        pred = {key: labels[key].copy() for key in ("road_transform", "lead", "lead_prob", "plan")}
        pred["lane_lines"] = vision_parsed["lane_lines"][row][None].repeat(len(labels["valid"]), 0)
        pred["lane_lines_prob"] = vision_parsed["lane_lines_prob"][row][None, 1::2].repeat(len(labels["valid"]), 0)
        pred["road_edges"] = vision_parsed["road_edges"][row][None].repeat(len(labels["valid"]), 0)
        pred["lead"][t], pred["lead_prob"][t] = vision_parsed["lead"][row], vision_parsed["lead_prob"][row]
        if policy_parsed is not None:
            pred["plan"][t] = policy_parsed["plan"][row]
        pictures.draw_labels(pic, pred, t, camera.MEDMODEL, PRED_PALETTE, draw_plan=policy_parsed is not None)
        rows += [pic, np.full((4, pic.shape[1], 3), 255, np.uint8)]
    path = out / "val_frames.png"
    pictures.write_png(path, np.concatenate(rows[:-1]))
    return path


def format_summary(result: dict[str, Any], output_dir: Path, last_checkpoint: Path | None) -> str:
    lines = ["", "=" * 72, "training finished", "-" * 72]
    for stage, seconds in result["timings_s"].items():
        lines.append(f"  {stage:<10} {seconds:8.1f} s")
    lines.append(f"  shards: {result['train_shards']} train, {result['val_shards']} val")
    final = {k[4:]: v for r in result["last"].values() for k, v in r.items() if k.startswith("val_")}
    for model, base, label in BASELINE_PAIRS:
        if model in final and base in final:
            verdict = "beats" if final[model] < final[base] else "does NOT beat"
            lines.append(f"  {label:<22} model {final[model]:7.3f}  baseline {final[base]:7.3f}  ({verdict} it)")
    for key in ("lead_x_err_m", "lead_v_err_mps", "desire_state_accuracy", "plan_calibration_1sigma"):
        if key in final:
            lines.append(f"  {key:<22} {final[key]:.3f}")
    lines.append(f"  checkpoint: {last_checkpoint}")
    lines.append(f"  outputs:    {output_dir} (metrics.jsonl, tensorboard/, plots/, config.yaml)")
    lines.append("=" * 72)
    return "\n".join(lines)
