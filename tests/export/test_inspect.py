"""`sptrain inspect` on exported artifacts and checkpoints (the shard branch is tested with the collector)."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import main
from sunnypilot_training.contract.metadata import dump_metadata, load_metadata

from spt_testutil import REFERENCE_METADATA


def inspect(path: Path, capsys: pytest.CaptureFixture) -> str:
    assert main(["inspect", str(path)]) == 0
    return capsys.readouterr().out


def test_onnx_report(export_dir: Path, capsys: pytest.CaptureFixture) -> None:
    out = inspect(export_dir / "driving_vision.onnx", capsys)
    assert "opsets {'ai.onnx': 17}" in out and "self-contained (no external data)" in out
    assert "graph input  img                  (1, 12, 128, 256) uint8" in out
    assert "hidden_state             [1064:1576]" in out and "'tiny0001/3'" in out
    assert "contract: matches op-0.10.1 driving_vision" in out
    params, gflops = re.search(r"([\d.]+) M parameters .*~([\d.]+) GFLOPs", out).groups()
    assert 0.1 < float(params) < 5 and 0.001 < float(gflops) < 5


def test_metadata_reports_compare_with_the_matching_profile(export_dir: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert "contract: matches op-0.10.1 driving_policy" in inspect(export_dir / "driving_policy_metadata.pkl", capsys)
    release = REFERENCE_METADATA / "v0.10.0_driving_policy_metadata.pkl"
    assert "contract: matches op-0.10.0 driving_policy" in inspect(release, capsys)
    metadata = load_metadata(export_dir / "driving_policy_metadata.pkl")
    metadata["input_shapes"] = dict(reversed(list(metadata["input_shapes"].items())))  # wrong input order
    odd = tmp_path / "odd_metadata.pkl"
    odd.write_bytes(dump_metadata(metadata))
    out = inspect(odd, capsys)
    assert "output shape of op-0.10.1 driving_policy, but:" in out and "input_shapes" in out


def test_tinygrad_pickles_are_described_but_never_unpickled(export_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    out = inspect(export_dir / "driving_vision_tinygrad.pkl", capsys)
    assert "not unpickled" in out and '"tinygrad_version"' not in out and "tinygrad_version" in out
    assert "parity_vs_torch" in out and "WARNING" not in out
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil = tmp_path / "evil_tinygrad.pkl"
    evil.write_bytes(pickle.dumps(Payload()))
    out = inspect(evil, capsys)
    assert "no sidecar" in out and not marker.exists()


def test_checkpoint_report(tiny_checkpoint: Path, capsys: pytest.CaptureFixture) -> None:
    out = inspect(tiny_checkpoint, capsys)
    assert "run tiny0001  epoch 3  stage policy" in out and "profile op-0.10.1" in out
    assert "1 DDIM steps, 2 export samples" in out and "model_checkpoint tiny0001/3" in out
    vision, policy = (float(x) for x in re.findall(r"([\d.]+) M parameters", out))
    assert vision > 0.1 and policy > 0.1


def test_unknown_files_are_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("x")
    assert main(["inspect", str(other)]) == 2
    assert "--kind" in capsys.readouterr().err
