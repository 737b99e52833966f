"""Install test fixtures: a real tiny export (through the script forms) and sunnypilot-shaped checkouts.

The checkout holds a minimal, faithful stand-in of openpilot's ``selfdrive/modeld`` parser for the op-0.10.1 split
runner, written from docs/contract.md (not copied): the install smoke test imports the checkout's own
``parse_model_outputs.py`` with the checkout importable as ``openpilot``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from spt_models import make_tiny_checkpoint
from spt_testutil import REPO_ROOT, built_once
from sunnypilot_standin import PARSER_PY, write_checkout


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The six modeld files, written by the two script forms running side by side (as a user would)."""
    def build(base: Path) -> None:
        ckpt = make_tiny_checkpoint(base / "checkpoints" / "epoch_0002.pt", ("vision.motion_volume=false",),
                                    run_id="inst0001", epoch=2, seed=1, fitted=False)  # the session's has the volume
        out = base / "models"
        procs = []
        for model in ("vision", "policy"):
            name = f"driving_{model}"
            args = [sys.executable, f"export/export_{model}.py", str(ckpt), "--onnx", str(out / f"{name}.onnx"),
                    "--tinygrad", str(out / f"{name}_tinygrad.pkl"), "--metadata", str(out / f"{name}_metadata.pkl")]
            procs.append(subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        for proc in procs:
            output = proc.communicate()[0].decode(errors="replace")
            assert proc.returncode == 0, output

    return built_once(tmp_path_factory, "install-export", build) / "models"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return write_checkout(tmp_path / "sunnypilot")


@pytest.fixture
def make_checkout(tmp_path: Path):
    """Factory: ``make_checkout(name, parser_source=None)`` -> a checkout with another parser source."""
    return lambda name, parser_source=None: write_checkout(tmp_path / name, parser_source or PARSER_PY)


@pytest.fixture
def standin_parser_source() -> str:
    return PARSER_PY

