"""Paths and small helpers shared by the tests (importable as ``spt_testutil``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
REFERENCE_METADATA = FIXTURES / "openpilot-metadata"
# (file in REFERENCE_METADATA, contract profile, model)
REFERENCE_FILES = [
    ("v0.10.4_driving_vision_metadata.pkl", "op-0.10.1", "driving_vision"),
    ("v0.10.4_driving_policy_metadata.pkl", "op-0.10.1", "driving_policy"),
    ("v0.10.0_driving_vision_metadata.pkl", "op-0.10.0", "driving_vision"),
    ("v0.10.0_driving_policy_metadata.pkl", "op-0.10.0", "driving_policy"),
]


def road_point(s_m, d_m, radius_m=None):
    """World (x, y, heading) of arc length s and right offset d on the reference road of ``make_truth``:
    the x axis (straight, heading north) or a right-turning circle of ``radius_m`` starting at the origin."""
    import numpy as np

    s = np.asarray(s_m, dtype=np.float64)
    if radius_m is None:
        return s, np.zeros_like(s) + d_m, np.zeros_like(s)
    h = s / radius_m
    r = radius_m - d_m  # right of a right turn is the inside
    return r * np.sin(h), radius_m - r * np.cos(h), h


def make_truth(ego_s_d, *, radius_m=None, dt_s=0.05, line_offsets_m=(-5.4, -1.8, 1.8, 5.4),
               edge_offsets_m=(-7.0, 7.0), camera_height_m=1.22, road_z_fn=None, others=None, speed_mps=None):
    """A hand-made EpisodeTruth on a reference road (see ``road_point``): the ego drives at arc length and
    right offset ``ego_s_d`` (T, 2) with its heading along the road; lane boundaries and edges are the
    road's lines at the given offsets, sampled from 10 m behind to 220 m ahead of the ego.

    ``road_z_fn(s_m) -> z`` gives the road surface z (down) along the road; ``others`` is a list of (T, 2)
    (s, d) tracks of other vehicles, oriented along the road.
    """
    import numpy as np

    from sunnypilot_training.collector.episode_truth import EpisodeTruth

    ego = np.asarray(ego_s_d, dtype=np.float64)
    T = len(ego)
    z_fn = road_z_fn or (lambda s: np.zeros_like(s))

    def poses(track):
        x, y, h = road_point(track[:, 0], track[:, 1], radius_m)
        out = np.zeros((T, 6))
        out[:, 0], out[:, 1], out[:, 2], out[:, 5] = x, y, z_fn(track[:, 0]), h
        return out

    pose = poses(ego)
    pose[:, 2] -= camera_height_m
    ahead = np.arange(-10.0, 221.0, 1.0)  # (K,)

    def band(offsets):
        out = np.zeros((T, len(offsets), len(ahead), 3))
        for t in range(T):
            s = ego[t, 0] + ahead
            for i, d in enumerate(offsets):
                x, y, _ = road_point(s, d, radius_m)
                out[t, i] = np.stack([x, y, z_fn(s)], axis=1)
        return out

    tracks = [np.asarray(o, dtype=np.float64) for o in (others or [])]
    M = len(tracks)
    opose = np.stack([poses(o) for o in tracks], axis=1) if M else np.zeros((T, 0, 6))
    ospeed = np.stack([np.gradient(o[:, 0], dt_s) for o in tracks], axis=1) if M else np.zeros((T, 0))
    speed = np.gradient(ego[:, 0], dt_s) if speed_mps is None else np.asarray(speed_mps, dtype=np.float64)
    zeros = np.zeros(T, dtype=bool)
    return EpisodeTruth(
        dt_s=dt_s, ego_pose_ned=pose, ego_speed_mps=speed, ego_accel_mps2=np.gradient(speed, dt_s),
        camera_height_m=camera_height_m, desire=np.zeros(T, np.int64), left_blinker=zeros.copy(),
        right_blinker=zeros.copy(), gas_pressed=zeros.copy(), brake_pressed=zeros.copy(),
        engaged=~zeros, gas_disengage=zeros.copy(), brake_disengage=zeros.copy(), steer_override=zeros.copy(),
        lines_ned=band(line_offsets_m), lines_exist=np.ones((T, 4), bool), edges_ned=band(edge_offsets_m),
        others_pose_ned=opose, others_speed_mps=ospeed, others_accel_mps2=np.gradient(ospeed, dt_s, axis=0),
        others_size_m=np.tile([4.6, 1.85, 1.5], (M, 1)), others_present=np.ones((T, M), bool),
    )


def write_fake_shard(output_dir, name="fake_0_0.zarr", T=260, seed=0):
    """A small, valid shard: labels from a hand-made straight-road truth, frames whose pixels encode their
    frame index (img: t % 251, big_img: (t + 100) % 251) so tests can tell frames apart."""
    import numpy as np

    from sunnypilot_training.collector.labels import compute_labels
    from sunnypilot_training.episodes.shards import FRAME_SHAPE, ShardWriter

    track = np.stack([20.0 * np.arange(T) * 0.05, np.zeros(T)], axis=1)
    truth = make_truth(track)
    truth.desire[100:140] = 3
    lab = compute_labels(truth)
    frames = np.arange(T, dtype=np.int64)
    img = np.broadcast_to((frames % 251).astype(np.uint8)[:, None, None, None], (T,) + FRAME_SHAPE)
    big = np.broadcast_to(((frames + 100) % 251).astype(np.uint8)[:, None, None, None], (T,) + FRAME_SHAPE)
    attrs = {"simulator": "fake", "simulator_version": "0", "scenario": "fake", "seed": seed, "episode_index": 0,
             "dt_s": 0.05, "cameras": {}}
    with ShardWriter(output_dir, name, T, attrs) as writer:
        for start in range(0, T, 64):
            writer.write_frames(start, {"img": np.ascontiguousarray(img[start:start + 64]),
                                        "big_img": np.ascontiguousarray(big[start:start + 64])})
        writer.write_labels(lab)
        return writer.commit()


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` once per test run: under the parallel run the worker processes share the folder (the first
    builds it under a lock, the others wait and reuse it); tests only read it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with FileLock(str(root / f"shared-{name}.lock")):
        if not done.exists():
            build(folder)
            done.touch()
    return folder
