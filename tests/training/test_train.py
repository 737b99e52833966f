"""Tiny end-to-end training: stages, checkpoints, exact resume, DDP on two CPU processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sunnypilot_training.errors import ConfigError
from sunnypilot_training.training import trainer as trainer_module
from sunnypilot_training.training.checkpoint import CALIBRATION_SUFFIX
from sunnypilot_training.training.config import load_config
from sunnypilot_training.training.trainer import run_training
from sunnypilot_training.training.validation import best_epoch, selection_score, selection_scores

from spt_testutil import REPO_ROOT, write_fake_shard

TINY = ["training.vision_epochs=2", "training.policy_epochs=2", "training.batch_size=8", "training.warmup_steps=2",
        "diffusion.train_timesteps=20", "diffusion.steps=4", "diffusion.export_samples=4"]


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shards")
    write_fake_shard(root / "train", "a_0_0.zarr", T=222)
    write_fake_shard(root / "train", "a_0_1.zarr", T=216)
    write_fake_shard(root / "val", "a_1_0.zarr", T=214)
    return root / "train", root / "val"


def _overrides(data_dirs, out: Path, *extra: str) -> list[str]:
    return [f"dataset.train_path={data_dirs[0]}", f"dataset.val_path={data_dirs[1]}", f"output_dir={out}", *TINY,
            *extra]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    parts = ("vision", "policy", "vision_ema", "policy_ema")
    return {f"{part}.{k}": v for part in parts for k, v in ckpt[part].items()}


@pytest.fixture(scope="module")
def full_run(data_dirs, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    cfg = load_config(_overrides(data_dirs, out))
    return out, cfg, run_training(cfg, progress=False)


def test_end_to_end_outputs(full_run) -> None:
    out, _, result = full_run
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == [f"epoch_{e:04d}.pt" for e in (1, 2, 3, 4)]
    ckpt = torch.load(out / "checkpoints" / "epoch_0004.pt", map_location="cpu", weights_only=True)
    assert ckpt["stage"] == "policy" and ckpt["epoch"] == 4 and ckpt["profile"] == "op-0.10.1"
    assert any("normalizer" in k for k in ckpt["policy"]) and any("normalizer" in k for k in ckpt["vision"])
    assert (out / "config.yaml").read_text().startswith("dataset:")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["vision", "vision", "policy", "policy"]
    assert "val_plan_ade_10s" in records[-1] and "val_plan_ade_10s_cv" in records[-1]
    assert "val_lane_left_err_60m" in records[0]
    assert records[0]["val_pose_speed_err_mps"] >= 0 and records[0]["val_pose_speed_err_mps_const"] >= 0
    for name in ("loss_curves.png", "val_vs_baselines.png", "val_frames.png"):
        assert (out / "plots" / name).stat().st_size > 1000
    assert any((out / "tensorboard").iterdir())
    assert len(list((out / "features").iterdir())) == 1  # one cache, keyed by the EMA vision weights
    for record in (records[1], records[3]):  # each stage ends with its epoch of the best validation score
        scores = {int(e): v for e, v in record["selection_scores"].items()}
        assert sorted(scores) == ([1, 2] if record["stage"] == "vision" else [3, 4])
        assert record["selected_epoch"] == min(scores, key=lambda e: (scores[e], e))


def _ema(folder: Path, epoch: int, part: str) -> dict[str, torch.Tensor]:
    ckpt = torch.load(folder / f"epoch_{epoch:04d}.pt", map_location="cpu", weights_only=True)
    return {k: v for k, v in ckpt[f"{part}_ema"].items() if not k.endswith(CALIBRATION_SUFFIX)}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_stage_ends_with_the_weights_of_its_selected_epoch(full_run, data_dirs, tmp_path, monkeypatch) -> None:
    """With the first epoch of each stage made the best, the checkpoint that ends the stage holds that epoch's EMA
    weights (calibrated anew); in the run that selected by score, the stage's end moved on exactly where the
    selected epoch was the last one."""
    monkeypatch.setattr(trainer_module, "best_epoch", lambda scores: min(scores))
    run_training(load_config(_overrides(data_dirs, tmp_path)), progress=False)
    folder = tmp_path / "checkpoints"
    for part, first, end in (("vision", 1, 2), ("policy", 3, 4)):
        assert _same(_ema(folder, end, part), _ema(folder, first, part)), part
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("selected_epoch") for r in records] == [None, 1, None, 3]
    assert all("calibration" in records[i] for i in (1, 3))

    out, _, _ = full_run
    scored = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for part, first, end, record in (("vision", 1, 2, scored[1]), ("policy", 3, 4, scored[3])):
        moved_on = not _same(_ema(out / "checkpoints", end, part), _ema(out / "checkpoints", first, part))
        assert moved_on == (record["selected_epoch"] == end), part


def test_selection_scores_weigh_each_part_against_its_baseline() -> None:
    def policy(epoch: int, ades: tuple[float, ...], cvs: tuple[float, ...]) -> dict:
        record = {"stage": "policy", "epoch": epoch}
        for h, ade, cv in zip((2, 5, 10), ades, cvs):
            record.update({f"val_plan_ade_{h}s": ade, f"val_plan_ade_{h}s_cv": cv})
        return record

    history = [policy(3, (1.0, 3.0, 6.0), (0.5, 3.0, 12.0)), policy(4, (0.5, 3.0, 12.0), (0.5, 3.0, 12.0)),
               {"stage": "vision", "epoch": 2, "val_pose_speed_err_mps": 1.0, "val_pose_speed_err_mps_const": 4.0}]
    scores = selection_scores(history, "policy")
    assert scores == pytest.approx({3: (2.0 + 1.0 + 0.5) / 3, 4: 1.0})
    assert best_epoch(scores) == 4 and best_epoch({5: 1.0, 4: 1.0}) == 4 and best_epoch({}) is None
    assert selection_scores(history, "vision") == {2: 0.25}  # the parts measured; lanes absent here
    assert selection_score("vision", {"pose_speed_err_mps": 1.0, "pose_speed_err_mps_const": 0.0}) == 10.0  # floor
    assert selection_score("vision", {"lead_x_err_m": 1.0}) is None
    # the controls' actions count like a horizon: an epoch whose acceleration is twice constant velocity's loses
    acting = {"plan_ade_2s": 0.5, "plan_ade_2s_cv": 0.5, "action_long_accel_err_mps2": 1.0,
              "action_long_accel_err_mps2_cv": 0.5, "action_lat_accel_err_mps2": 0.2,
              "action_lat_accel_err_mps2_hold": 0.4}
    assert selection_score("policy", acting) == pytest.approx((1.0 + 2.0 + 0.5) / 3)


@pytest.mark.parametrize("from_epoch", [1, pytest.param(3, marks=pytest.mark.slow)])  # from 3: checkpoint=latest
def test_resume_is_exact(full_run, data_dirs, tmp_path, from_epoch: int) -> None:
    out, _, _ = full_run
    start = out / "checkpoints" / f"epoch_{from_epoch:04d}.pt"
    cfg = load_config(_overrides(data_dirs, tmp_path, "training.resume=true", f"checkpoint={start}"))
    run_training(cfg, progress=False)
    resumed = _weights(tmp_path / "checkpoints" / "epoch_0004.pt")
    uninterrupted = _weights(out / "checkpoints" / "epoch_0004.pt")
    assert resumed.keys() == uninterrupted.keys()
    for k in uninterrupted:
        assert torch.equal(resumed[k], uninterrupted[k]), k
    assert not (tmp_path / "checkpoints" / f"epoch_{from_epoch:04d}.pt").exists()  # continued after it


def test_checkpoint_latest_resumes_the_newest_checkpoint_in_the_output_dir(full_run, data_dirs, tmp_path) -> None:
    out, _, _ = full_run
    cfg = load_config(_overrides(data_dirs, tmp_path, "training.resume=true", "checkpoint=latest"))
    with pytest.raises(ConfigError, match="checkpoint=latest: no checkpoint in"):
        run_training(cfg, progress=False)
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    for epoch in (1, 2, 3):  # an interrupted run: epochs 1-3 exist
        shutil.copy(out / "checkpoints" / f"epoch_{epoch:04d}.pt", tmp_path / "checkpoints")
    run_training(cfg, progress=False)
    resumed = _weights(tmp_path / "checkpoints" / "epoch_0004.pt")
    uninterrupted = _weights(out / "checkpoints" / "epoch_0004.pt")
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in uninterrupted)


def test_missing_dataset_path_is_a_config_error(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "sunnypilot_training.cli.main", "train",
                             f"dataset.train_path={tmp_path / 'nope'}", f"output_dir={tmp_path}"],
                            capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 2
    assert "dataset.train_path" in result.stderr and "nope" in result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_cpu_processes(data_dirs, tmp_path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}",
           "training/train.py", *_overrides(data_dirs, tmp_path, "training.vision_epochs=1",
                                            "training.policy_epochs=1", "training.batch_size=4",
                                            "vision.motion_volume=false")]  # DDP's plumbing; the volume is not
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["vision", "policy"]  # rank 0 alone logs
    assert result.stdout.count("training finished") == 1
