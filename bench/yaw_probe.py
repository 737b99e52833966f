"""How well does an exported vision model read what steering needs: the car's yaw rate (its ``pose`` output) and
where the car is in its lane (its ``lane_lines`` output), against the labels.

For every ``--stride``-th valid frame of the shards, the vision model (onnxruntime) runs on frames t-4 and t; its
pose yaw rate is compared with the true one, and as a curvature (yaw rate / v) with the lag-adjusted desired
curvature of the plan label, as lateral acceleration - next to holding the car's true current curvature. This is
the reading a policy would need to steer by a curvature better than holding it. The lane centre (the middle of the
two lines about the car) at 0 m and 10 m ahead is compared with the labelled one: RMS error, the labels' own spread
about their mean, and R^2 (1 - error^2 / spread^2; 0: no better than always saying the average offset). A policy
brings the car back to the lane centre only as well as this reading says where it is.

``--volume`` instead asks the motion volume itself (no trained weights): the soft minimum of its whole-road yaw
curve (a horizontal shift in pixels between frames t-4 and t), mapped to a yaw rate by a least-squares line fitted
on every other shard and measured on the rest - a probe of what the frames hold, not a model.

Usage: python bench/yaw_probe.py EXPORT_DIR SHARD_DIR [--stride 8] [--every 4]
       python bench/yaw_probe.py --volume SHARD_DIR [--stride 8] [--every 2]
(the package importable as ``sunnypilot_training``; ``--every`` takes every n-th shard, sorted by name)
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from sunnypilot_training.contract.actions import FORWARD, MIN_SPEED_MPS, YAW, curvature_from_plan
from sunnypilot_training.contract.camera import MODEL_CAMERAS
from sunnypilot_training.contract.constants import IMG_SHAPE, Plan, Pose
from sunnypilot_training.contract.inputs import LATERAL_DELAY_S, frame_pairs
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames, read_labels
from sunnypilot_training.evaluation.metrics import lane_centre
from sunnypilot_training.evaluation.model_runner import ExportedModels
from sunnypilot_training.training.models.motion import SOFT_ARGMIN_T, MotionGrid, MotionVolume
from sunnypilot_training.training.models.vision import IMG_OFFSET, IMG_SCALE

POSE_YAW_RATE = Pose.ROTATION_RATE.start + YAW
OFFSET_AT_M = (0.0, 10.0)  # where the lane centre is read, metres ahead


def centre_at_offsets(lane_lines: np.ndarray) -> np.ndarray:
    """(n, len(OFFSET_AT_M)) the lane centre (evaluation.metrics.lane_centre) at each of OFFSET_AT_M."""
    return np.stack([lane_centre(lane_lines, x) for x in OFFSET_AT_M], axis=1)


def probe_shard(models: ExportedModels, path, stride: int) -> dict[str, float]:
    shard = open_shard(path)
    labels = read_labels(shard)
    ts = np.flatnonzero(labels["valid"])[::stride]
    yaw_rate, lines = [], []
    for t in ts:
        feeds = {key: frame_pairs(lambda idx, key=key: read_frames(shard, key, idx), [t])[0]
                 for key in ("img", "big_img")}
        out = parse_outputs(models.profile.vision, models.vision(feeds))
        yaw_rate.append(out["pose"][0, POSE_YAW_RATE])
        lines.append(out["lane_lines"][0])
    plan = labels["plan"][ts]
    speed = plan[:, 0, Plan.VELOCITY.start + FORWARD]
    v = np.maximum(speed, MIN_SPEED_MPS)
    target = curvature_from_plan(plan, speed, LATERAL_DELAY_S)
    true_rate = labels["pose"][ts][:, POSE_YAW_RATE]
    hold = plan[:, 0, Plan.ORIENTATION_RATE.start + YAW] / v
    read = np.asarray(yaw_rate) / v
    return {"scenario": str(shard.attrs.get("scenario")),
            "yaw_rate_err": float(np.abs(np.asarray(yaw_rate) - true_rate).mean()),
            "mean_abs_yaw_rate": float(np.abs(true_rate).mean()),
            "lat_accel_err_read": float(np.mean(np.abs(read - target) * v * v)),
            "lat_accel_err_hold": float(np.mean(np.abs(hold - target) * v * v)),
            "centre_read": centre_at_offsets(np.asarray(lines)),
            "centre_true": centre_at_offsets(labels["lane_lines"][ts])}


def offset_table(rows: dict[str, list[dict]]) -> None:
    """Per scenario, pooled over its episodes: the lane-centre reading at each of OFFSET_AT_M."""
    heads = [f"{name} {x:g} m" for x in OFFSET_AT_M for name in ("centre_err", "spread", "R2")]
    print("| scenario | frames | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 2) + "|")
    for scenario, members in sorted(rows.items()):
        read = np.concatenate([m["centre_read"] for m in members])
        true = np.concatenate([m["centre_true"] for m in members])
        cells = []
        for i in range(len(OFFSET_AT_M)):
            err = float(np.sqrt(np.mean((read[:, i] - true[:, i]) ** 2)))
            spread = float(true[:, i].std())
            r2 = 1.0 - err ** 2 / spread ** 2 if spread > 1e-3 else float("nan")
            cells += [f"{err:.3f}", f"{spread:.3f}", f"{r2:.2f}"]
        print(f"| {scenario} | {len(read)} | " + " | ".join(cells) + " |")


def volume_shifts(volume: MotionVolume, path, stride: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(scenario, the whole road's soft-minimum shift (n,) px, the true yaw rate (n,)) of every ``stride``-th
    valid frame of one shard."""
    shard = open_shard(path)
    labels = read_labels(shard)
    ts = np.flatnonzero(labels["valid"])[::stride]
    pairs = frame_pairs(lambda idx: read_frames(shard, "img", idx), ts)
    with torch.no_grad():
        yaw_curve = volume.curve_parts((torch.from_numpy(pairs).float() - IMG_OFFSET) * IMG_SCALE)[1][..., -1]
        weights = torch.softmax(-yaw_curve / SOFT_ARGMIN_T, dim=1)  # (n, shifts)
        shift = (weights * volume.shift_pos * volume.grid.max_shift_px).sum(dim=1).numpy()
    return str(shard.attrs.get("scenario")), shift, labels["pose"][ts][:, POSE_YAW_RATE]


def volume_probe(shard_dir: str, stride: int, every: int) -> None:
    volume = MotionVolume(MODEL_CAMERAS["img"], IMG_SHAPE[2:], 8, 8, MotionGrid())
    shards = [volume_shifts(volume, p, stride) for p in sorted(find_shards(shard_dir))[::every]]
    fit, held = shards[0::2], shards[1::2]
    x = np.concatenate([s[1] for s in fit])
    line = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), np.concatenate([s[2] for s in fit]), rcond=None)[0]
    print(f"yaw rate = {line[0]:.5f} rad/s per px x shift + {line[1]:.5f} (fitted on {len(fit)} shards)")
    print("| scenario | held-out shards | yaw_rate_err | mean_abs_yaw_rate |")
    print("|---|---|---|---|")
    for scenario in sorted({s[0] for s in held}):
        members = [s for s in held if s[0] == scenario]
        err = np.concatenate([np.abs(s[1] * line[0] + line[1] - s[2]) for s in members]).mean()
        zero = np.concatenate([np.abs(s[2]) for s in members]).mean()
        print(f"| {scenario} | {len(members)} | {err:.4f} | {zero:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", help="EXPORT_DIR SHARD_DIR, or SHARD_DIR with --volume")
    parser.add_argument("--volume", action="store_true", help="probe the motion volume instead of a model")
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--every", type=int, default=None, help="every n-th shard (default 4, with --volume 2)")
    args = parser.parse_args()
    if args.volume:
        volume_probe(args.dirs[-1], args.stride, args.every or 2)
        return
    if len(args.dirs) != 2:
        parser.error("give EXPORT_DIR SHARD_DIR (or --volume SHARD_DIR)")
    args.export_dir, args.shard_dir, args.every = args.dirs[0], args.dirs[1], args.every or 4
    models = ExportedModels.load(args.export_dir)
    rows: dict[str, list[dict[str, float]]] = {}
    for path in sorted(find_shards(args.shard_dir))[::args.every]:
        row = probe_shard(models, path, args.stride)
        rows.setdefault(row.pop("scenario"), []).append(row)
    keys = ("yaw_rate_err", "mean_abs_yaw_rate", "lat_accel_err_read", "lat_accel_err_hold")
    print("| scenario | episodes | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 2) + "|")
    for scenario, members in sorted(rows.items()):
        print(f"| {scenario} | {len(members)} | "
              + " | ".join(f"{np.mean([m[k] for m in members]):.4f}" for k in keys) + " |")
    print()
    offset_table(rows)


if __name__ == "__main__":
    main()
