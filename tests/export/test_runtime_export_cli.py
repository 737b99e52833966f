"""`sptrain export --profile P` for the 2026 runtimes from a real tiny checkpoint (slow: a full export each)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.evaluation.model_runner import ExportedModels

from spt_models import sptrain_export


@pytest.mark.slow
@pytest.mark.parametrize("profile_id", ["op-0.11.1", "op-2026.07", "op-2026.09", "sp-2026.10"])
def test_export_for_each_runtime_profile(tiny_checkpoint: Path, tmp_path: Path, profile_id: str) -> None:
    out = tmp_path / profile_id
    assert sptrain_export(["export", str(tiny_checkpoint), "--out-dir", str(out), "--profile", profile_id,
                           "--cameras", "1344x760"]) == 0
    manifest = json.loads((out / "sptrain_export.json").read_text())
    profile = get_profile(profile_id)
    assert manifest["profile"] == profile_id and manifest["packaging"] == profile.runtime.packaging
    assert set(manifest["runtime_files"]) <= {p.name for p in out.iterdir()}
    harness = manifest["parity"]["tinygrad_runtime_harness"]
    assert harness["max_abs_diff"] <= harness["tolerance"]
    # the split files stay: open-loop evaluation and closed-loop driving run the same folder
    models = ExportedModels.load(out)
    assert models.profile.vision == profile.vision


def test_a_profile_of_other_networks_is_refused(tiny_checkpoint: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    assert sptrain_export(["export", str(tiny_checkpoint), "--out-dir", str(tmp_path / "x"), "--profile",
                           "op-0.10.0"]) == 2
    err = capsys.readouterr().err
    assert "trained for contract profile op-0.10.1" in err and "pass --profile with one of" in err
    assert "'op-2026.09'" in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_a_fused_profile_needs_both_models(tiny_checkpoint: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    assert sptrain_export(["export", str(tiny_checkpoint), "--out-dir", str(tmp_path / "y"), "--profile",
                           "op-2026.07", "--models", "vision"]) == 2
    assert "export both models" in capsys.readouterr().err
