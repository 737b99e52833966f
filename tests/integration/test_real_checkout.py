"""Opt-in: SPTRAIN_OPENPILOT_CHECKOUT=DIR (an openpilot or sunnypilot checkout) - its runtime is read from its own
modeld code, and a micro export of that profile installs into a copy of its Python sources and passes the smoke
test: the release harness and, for the runtimes of selfdrive/modeld, the checkout's own ModelState and parser.
Skipped without the variable (no checkout is shipped with the tests)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from sunnypilot_training.cli.main import main as sptrain
from sunnypilot_training.export import onnx_export, runtime_export
from sunnypilot_training.integration import checkout_modeld
from sunnypilot_training.integration.backup import read_manifest
from sunnypilot_training.integration.runtime_detect import detect_runtime
from sunnypilot_training.integration.runtime_install import SMOKE_FRAMES

from spt_runtime_micro import micro_source

CHECKOUT = os.environ.get("SPTRAIN_OPENPILOT_CHECKOUT")
pytestmark = pytest.mark.skipif(not CHECKOUT, reason="set SPTRAIN_OPENPILOT_CHECKOUT=DIR to test against a checkout")


SKIP_DIRS = {".git", "tinygrad_repo", "node_modules", "__pycache__"}


def _copy_python_tree(root: Path, dest: Path) -> Path:
    """The checkout's Python and Cython sources (no models, no build outputs, no git) under ``dest``, its
    ``tinygrad_repo`` linked (the tinygrad its modeld imports), and empty model folders."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        rel = Path(folder).relative_to(root)
        for name in files:
            if name.endswith((".py", ".pyx")):
                (dest / rel).mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, dest / rel / name)
    if (root / "tinygrad_repo").is_dir():
        (dest / "tinygrad_repo").symlink_to(root / "tinygrad_repo", target_is_directory=True)
    for rel in ("openpilot/selfdrive/modeld", "selfdrive/modeld", "openpilot/sunnypilot/modeld_v2",
                "sunnypilot/modeld_v2"):
        if (dest / rel).is_dir():
            (dest / rel / "models").mkdir(exist_ok=True)
    return dest


def _micro_export(profile_id: str, out: Path) -> None:
    source = micro_source(profile_id)
    out.mkdir()
    if source.profile.runtime.packaging == "combined":  # the runtime compiles the two split ONNX files
        for name, model in source.models.items():
            spec = source.profile.model(name)
            inputs = tuple(torch.zeros(i.shape, dtype=torch.uint8 if i.dtype == "uint8" else torch.float32)
                           for i in spec.inputs)
            onnx_export.export_to_onnx(model, spec, inputs, out / f"{name}.onnx", source.model_checkpoint)
    report = runtime_export.export_runtime(source, out, "CPU", ["1344x760"], log=print)
    (out / runtime_export.MANIFEST).write_text(json.dumps(runtime_export.manifest(source, report, "CPU")),
                                               encoding="utf-8")


def test_the_checkouts_runtime_is_detected_and_an_export_for_it_installs(tmp_path: Path) -> None:
    root = Path(CHECKOUT).expanduser().resolve()
    detected = detect_runtime(root)
    assert detected.profile_id is not None, detected.evidence
    if detected.profile_id in ("op-0.10.1", "op-0.10.0"):
        pytest.skip(f"{root} runs the split runtime ({detected.evidence}); the split install has its own tests")
    export = tmp_path / "export"
    _micro_export(detected.profile_id, export)
    copy = _copy_python_tree(root, tmp_path / "checkout")
    assert detect_runtime(copy).profile_id == detected.profile_id
    assert sptrain(["install", "--from-dir", str(export), "--sunnypilot-root", str(copy)]) == 0
    models = detect_runtime(copy).models_dir
    smoke = read_manifest(sorted((models / ".sptrain_backups").iterdir())[-1])["smoke_test"]
    own = smoke["checkout_modeld"]
    if detected.profile_id in checkout_modeld.MODELD_MODULES:  # the checkout's own ModelState and parser ran
        assert own["ran"], own["reason"]
        assert own["frames"] == SMOKE_FRAMES and set(own["vs_harness"]) >= {"hidden_state"}
