"""The collector end to end on the built-in simulator: determinism, labels on pixels, atomic resumable runs, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sunnypilot_training.collector.collect import collect, schedule_episodes
from sunnypilot_training.contract import camera, yuv
from sunnypilot_training.contract.constants import X_IDXS, LaneLine
from sunnypilot_training.episodes.shards import find_shards, open_shard, read_frames, read_labels, shard_name
from sunnypilot_training.errors import ConfigError, ShardFormatError

from spt_testutil import REPO_ROOT

SECONDS = 12.0


def _sptrain(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sunnypilot_training.cli.main", *args], capture_output=True,
                          text=True, cwd=REPO_ROOT, **kw)


@pytest.fixture(scope="module")
def highway(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("highway")
    collect(schedule_episodes("builtin", "highway_follow", 1, out, seed=5, duration_s=SECONDS), progress=False)
    return out / shard_name("highway_follow", 5, 0)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    shard = open_shard(path)
    return {k: np.asarray(a[:]) for k, a in shard.arrays.items()}


def test_same_seed_gives_bit_identical_shards(highway: Path, tmp_path: Path) -> None:
    specs = schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=5, duration_s=SECONDS)
    collect(specs, progress=False)
    again, first = _arrays(tmp_path / highway.name), _arrays(highway)
    for key in first:
        assert np.array_equal(again[key], first[key]), key
    assert open_shard(tmp_path / highway.name).attrs == open_shard(highway).attrs
    other = schedule_episodes("builtin", "highway_follow", 1, tmp_path / "other", seed=6, duration_s=SECONDS)
    collect(other, progress=False)
    assert not np.array_equal(_arrays(tmp_path / "other" / shard_name("highway_follow", 6, 0))["img"], first["img"])


def _line_brightness(y_img: np.ndarray, lines: np.ndarray, shift_m: float) -> list[float]:
    """Luma at the projected points (8-40 m) of a frame's lane lines, shifted sideways by ``shift_m``."""
    x = X_IDXS[(X_IDXS > 8) & (X_IDXS < 40)]
    values = []
    for line in lines:
        y = np.interp(x, X_IDXS, line[:, 0]) + shift_m
        z = np.interp(x, X_IDXS, line[:, 1])
        px, front = camera.project_points_device(np.stack([x, y, z], axis=1), camera.MEDMODEL)
        for (u, v), ok in zip(px, front):
            r, c = int(round(v)), int(round(u))
            if ok and 1 <= r < 255 and 1 <= c < 511:
                values.append(float(y_img[r - 1:r + 2, c - 1:c + 2].max()))
    return values


def test_lane_line_labels_land_on_marking_pixels(highway: Path) -> None:
    shard = open_shard(highway)
    labels = read_labels(shard)
    on, beside = [], []
    for t in range(0, shard.n_frames, 10):
        painted = [i for i in (LaneLine.LEFT, LaneLine.RIGHT) if labels["lane_lines_prob"][t, i] > 0.5]
        y_img = yuv.six_channel_to_y(read_frames(shard, "img", [t])[0]).astype(np.float64)
        lines = labels["lane_lines"][t, painted]
        on += _line_brightness(y_img, lines, 0.0)
        beside += _line_brightness(y_img, lines, 0.5) + _line_brightness(y_img, lines, -0.5)
    on_mean, beside_mean = float(np.mean(on)), float(np.mean(beside))
    assert len(on) > 100
    assert on_mean > beside_mean + 25, (on_mean, beside_mean)  # paint is bright; 0.5 m off is asphalt


def test_inspect_and_viz(highway: Path, tmp_path: Path) -> None:
    result = _sptrain("inspect", str(highway))
    assert result.returncode == 0 and "highway_follow" in result.stdout and "lane_lines" in result.stdout
    out = tmp_path / "v.png"
    result = _sptrain("viz", str(highway), "--frames", "0:200:50", "--out", str(out))
    assert result.returncode == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = _sptrain("viz", str(highway), "--frame", "99999", "--out", str(out))
    assert bad.returncode == 2 and "outside" in bad.stderr


def test_unknown_scenario_lists_names(tmp_path: Path) -> None:
    result = _sptrain("collect", "--scenario", "moon_landing", "--output", str(tmp_path))
    assert result.returncode == 2 and "highway_follow" in result.stderr and "stop_and_go" in result.stderr
    assert not any(tmp_path.iterdir())


def test_killed_collect_leaves_no_shard_and_resumes(tmp_path: Path) -> None:
    args = ["collect", "--scenario", "curvy_road", "--episodes", "2", "--output", str(tmp_path),
            "--episode-seconds", str(SECONDS), "--seed", "2", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "sunnypilot_training.cli.main", *args], cwd=REPO_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir()):
        time.sleep(0.05)  # polling for the writer's temporary directory (not a timing assertion)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert find_shards(tmp_path) == []  # a killed run leaves no visible shard
    first = _sptrain(*args)
    assert first.returncode == 0, first.stderr
    assert "2 written" in first.stdout and "stale temporaries removed" in first.stdout
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())
    second = _sptrain(*args)
    assert "0 written, 2 already complete" in second.stdout
    assert len(find_shards(tmp_path)) == 2


def test_two_workers_write_the_same_shards(highway: Path, tmp_path: Path) -> None:
    """Byte for byte the shard of the one-process run: both run numpy's BLAS on one thread (on a 2-core machine
    OpenBLAS rounded the renderer's products differently with two threads)."""
    specs = schedule_episodes("builtin", "highway_follow", 2, tmp_path, seed=5, duration_s=SECONDS)
    summary = collect(specs, workers=2, progress=False)
    names = [shard_name("highway_follow", 5, k) for k in (0, 1)]
    assert [r.name for r in summary.written] == names
    two, one = _arrays(tmp_path / names[0]), _arrays(highway)
    for key in one:
        assert np.array_equal(two[key], one[key]), key


def test_a_label_tail_records_the_first_frames_of_the_longer_episode_all_labelled(highway: Path,
                                                                                  tmp_path: Path) -> None:
    """2 s recorded + a 10 s tail is the 12 s episode's world: its frames and labels are the first 2 s of the 12 s
    shard, byte for byte, and every recorded frame holds its 10 s plan label."""
    specs = schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=5, duration_s=2.0, label_tail_s=10.0)
    collect(specs, progress=False)
    short, full = _arrays(tmp_path / highway.name), _arrays(highway)
    assert short["img"].shape[0] == 40 and full["img"].shape[0] == 240
    for key in full:
        assert np.array_equal(short[key], full[key][:40]), key
    assert short["valid"].all()
    attrs = open_shard(tmp_path / highway.name).attrs
    assert attrs["label_tail_s"] == 10.0 and open_shard(highway).attrs["label_tail_s"] == 0.0
    other_tail = schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=5, duration_s=2.0, label_tail_s=11.0)
    with pytest.raises(ShardFormatError, match=r"label_tail_s=10.0 \(expected 11.0\)"):
        collect(other_tail, progress=False)  # another tail is another shard: refused, not reused


def test_episode_and_tail_lengths_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--label-tail-seconds 10"):
        schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=0, duration_s=1.5, label_tail_s=0.0)
    with pytest.raises(ConfigError, match="expected 0 or more"):
        schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=0, duration_s=12.0, label_tail_s=-1.0)
    with pytest.raises(ConfigError, match="expected at least 1"):
        schedule_episodes("builtin", "highway_follow", 1, tmp_path, seed=0, duration_s=0.5, label_tail_s=20.0)
    assert schedule_episodes("builtin", "highway_follow", 1, tmp_path, 0, 2.0, 10.0)[0].simulated_s == 12.0
