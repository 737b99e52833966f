"""``sptrain inspect`` for shards: keys, shapes, dtypes, attributes, duration and label statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..contract.constants import Desire, Meta, Plan
from .shards import open_shard, read_labels


def _stats(arr: np.ndarray) -> str:
    a = arr.astype(np.float64)
    return f"mean {a.mean():9.3f}  std {a.std():8.3f}  min {a.min():9.3f}  max {a.max():9.3f}"


def shard_report(path: str | Path) -> str:
    shard = open_shard(path)
    labels = read_labels(shard)
    T = shard.n_frames
    dt = float(shard.attrs["dt_s"])
    lines = [f"shard {shard.path}", f"  {T} frames x {dt:g} s = {T * dt:.1f} s; valid (10 s future): "
             f"{int(labels['valid'].sum())} frames"]
    for key in ("simulator", "simulator_version", "scenario", "seed", "episode_index", "schema_version",
                "label_definitions_version"):
        lines.append(f"  {key:<26} {shard.attrs.get(key)}")
    lines.append("  arrays:")
    for key, arr in shard.arrays.items():
        lines.append(f"    {key:<24} {str(arr.dtype):<8} {tuple(arr.shape)}  chunks {tuple(arr.chunks)}")
    lines.append("  label statistics:")
    v = labels["valid"]
    for key in ("ego_speed", "ego_accel", "plan", "lane_lines", "road_edges", "pose", "road_transform"):
        lines.append(f"    {key:<24} {_stats(labels[key][v] if v.any() else labels[key])}")
    plan_end = labels["plan"][v][:, -1, Plan.POSITION] if v.any() else np.zeros((1, 3))
    lines.append(f"    plan x at 10 s            mean {plan_end[:, 0].mean():.1f} m; |y| at 10 s mean "
                 f"{np.abs(plan_end[:, 1]).mean():.2f} m")
    lines.append(f"    lane_lines_prob (exists)  {np.round(labels['lane_lines_prob'].mean(axis=0), 3).tolist()}")
    lines.append(f"    lead_prob (0/2/4 s)       {np.round(labels['lead_prob'].mean(axis=0), 3).tolist()}")
    counts = labels["desire"].sum(axis=0).astype(int)
    names = [d.name.lower() for d in Desire]
    lines.append("    desire frames             " + ", ".join(f"{n} {c}" for n, c in zip(names, counts) if c))
    meta = labels["meta"]
    lines.append(f"    engaged {meta[:, Meta.ENGAGED].mean():.3f}; brake press "
                 f"{meta[:, Meta.BRAKE_PRESS[0]].mean():.3f}; gas press {meta[:, Meta.GAS_PRESS[0]].mean():.3f}; "
                 f"hard brake (3 m/s^2 within 2 s) {meta[:, Meta.HARD_BRAKE_3[0]].mean():.3f}")
    return "\n".join(lines)
