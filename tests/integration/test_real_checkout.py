"""Opt-in: SPTRAIN_OPENPILOT_CHECKOUT=DIR (an openpilot or sunnypilot checkout) - its runtime is read from its own
modeld code, and a micro export of that profile installs into a copy of its modeld folders and passes the smoke
test. Skipped without the variable (no checkout is shipped with the tests)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import main as sptrain
from sunnypilot_training.export import runtime_export
from sunnypilot_training.integration.runtime_detect import detect_runtime

from spt_runtime_micro import micro_source

CHECKOUT = os.environ.get("SPTRAIN_OPENPILOT_CHECKOUT")
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="set SPTRAIN_OPENPILOT_CHECKOUT=DIR to test against a checkout")


def _copy_modeld_tree(root: Path, dest: Path) -> Path:
    """The checkout's modeld and modeld_v2 Python files (no models, no build outputs) under ``dest``."""
    for rel in ("openpilot/selfdrive/modeld", "selfdrive/modeld", "openpilot/sunnypilot/modeld_v2",
                "sunnypilot/modeld_v2"):
        if (root / rel).is_dir():
            for source in (root / rel).glob("*.py"):
                (dest / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest / rel / source.name)
            (dest / rel / "models").mkdir(parents=True, exist_ok=True)
    return dest


def test_the_checkouts_runtime_is_detected_and_an_export_for_it_installs(tmp_path: Path) -> None:
    root = Path(CHECKOUT).expanduser().resolve()
    detected = detect_runtime(root)
    assert detected.profile_id is not None, detected.evidence
    if detected.profile_id in ("op-0.10.1", "op-0.10.0"):
        pytest.skip(f"{root} runs the split runtime ({detected.evidence}); the split install has its own tests")
    source = micro_source(detected.profile_id)
    export = tmp_path / "export"
    export.mkdir()
    if source.profile.runtime.packaging == "combined":
        pytest.skip("a combined export needs the two split ONNX files: use `sptrain export --profile op-0.11.1`")
    report = runtime_export.export_runtime(source, export, "CPU", ["1344x760"], log=print)
    (export / runtime_export.MANIFEST).write_text(json.dumps(runtime_export.manifest(source, report, "CPU")),
                                                  encoding="utf-8")
    copy = _copy_modeld_tree(root, tmp_path / "checkout")
    assert detect_runtime(copy).profile_id == detected.profile_id
    assert sptrain(["install", "--from-dir", str(export), "--sunnypilot-root", str(copy)]) == 0
