"""The one-shot pipeline through the real CLI: collect -> train -> export -> evaluate -> install -> restore."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spt_testutil import REPO_ROOT
from sunnypilot_standin import write_checkout

MODELD_FILES = ("driving_vision.onnx", "driving_vision_tinygrad.pkl", "driving_vision_metadata.pkl",
                "driving_policy.onnx", "driving_policy_tinygrad.pkl", "driving_policy_metadata.pkl")


def _sptrain(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "sunnypilot_training.cli.main", *args], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow  # a whole collect -> train -> export -> install chain: each stage has its own tests in `make test`
def test_tiny_pipeline_installs_and_restores(tmp_path: Path) -> None:
    checkout = write_checkout(tmp_path / "sunnypilot")
    models = checkout / "selfdrive" / "modeld" / "models"
    before = _tree(models)
    out = tmp_path / "run"
    common = ["--scenario", "highway_follow", "--train-episodes", "2", "--val-episodes", "1", "--test-episodes", "1",
              "--unseen-look-episodes", "1", "--episode-seconds", "3", "--output-dir", str(out), "--no-progress"]
    tiny = ["training.vision_epochs=1", "training.policy_epochs=1", "diffusion.steps=2", "diffusion.export_samples=2"]
    result = _sptrain("pipeline", *common, "--install", "--sunnypilot-root", str(checkout), *tiny)
    for name in MODELD_FILES:
        assert (out / "export" / name).stat().st_size > 0
        assert (models / name).read_bytes() == (out / "export" / name).read_bytes()  # installed as exported
    assert "smoke test passed" in result.stdout
    report = (out / "REPORT.md").read_text()
    for section in ("## Stages", "## Data", "## Exported models on held-out test episodes", "### Per scenario",
                    "### Appearance shift", "### Quality bars", "## Plots", "## Reproduce"):
        assert section in report
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert "plan_ade_5s_beats_constant_velocity_by_30pct" in evaluation["verdicts"]
    assert evaluation["test"]["policy_frames"] > 0 and evaluation["test_unseen_look"]["policy_frames"] > 0
    _sptrain("install", "--restore", "--sunnypilot-root", str(checkout))
    after = {k: v for k, v in _tree(models).items() if not k.startswith(".sptrain_backups")}
    assert after == before  # the stock files are back, byte for byte; the added ONNX is gone
    rerun = _sptrain("pipeline", *common, "--skip-export", *tiny)
    assert "0 written, 2 already complete" in rerun.stdout and "resuming training from" in rerun.stdout


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the quick preset's plan does not yet beat constant velocity on the held-out "
                   "four-scenario mix (its lines at 30 and 60 m do beat straight lines; "
                   "docs/benchmarks.md#models-on-held-out-episodes); strict: a pass fails the run, so this marker goes "
                   "when it does")
def test_quick_preset_beats_the_baselines(tmp_path: Path) -> None:
    """The learning test of the product: the quick preset's EXPORTED tiny models, on held-out test episodes of its
    scenario mix with unseen seeds, beat constant velocity at 5 and 10 s and straight lines at 30 and 60 m."""
    out = tmp_path / "quick"
    _sptrain("pipeline", "--preset", "quick", "--output-dir", str(out), "--no-progress", "--skip-drive",
             timeout=3600)
    evaluation = json.loads((out / "evaluation.json").read_text())
    m = {k: v["mean"] for k, v in evaluation["test"]["summary"]["all"].items()}
    assert m["plan_ade_5s"] < m["plan_ade_5s_cv"] and m["plan_ade_10s"] < m["plan_ade_10s_cv"], m
    assert m["lane_left_err_30m"] < m["lane_left_err_30m_straight"], m
    assert m["lane_left_err_60m"] < m["lane_left_err_60m_straight"], m


@pytest.mark.slow
def test_an_on_policy_round_collects_with_the_model_and_trains_on_both(tmp_path: Path) -> None:
    out = tmp_path / "rounds"
    _sptrain("pipeline", "--scenario", "curvy_road", "--train-episodes", "2", "--val-episodes", "1",
             "--test-episodes", "1", "--unseen-look-episodes", "0", "--episode-seconds", "3", "--output-dir",
             str(out), "--no-progress", "--skip-drive", "--on-policy-rounds", "1", "training.vision_epochs=1",
             "training.policy_epochs=1", "diffusion.steps=2", "diffusion.export_samples=2")
    rounds = json.loads((out / "on_policy.json").read_text())
    assert len(rounds) == 1 and 0.0 <= rounds[0]["collect"]["expert_share"] <= 1.0
    assert len(list((out / "data" / "train_on_policy_1").glob("*.zarr"))) == 2
    assert (out / "export_round_1" / "driving_policy.onnx").stat().st_size > 0
    assert "plan_ade_5s" in rounds[0]["evaluation"]["test"]["summary"]["all"]
    assert "## On-policy rounds" in (out / "REPORT.md").read_text()
