"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from spt_models import make_tiny_checkpoint, sptrain_export
from spt_testutil import REPO_ROOT


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of tiny untrained models with fitted normalisers (one per test session)."""
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoints" / "epoch_0003.pt")


@pytest.fixture(scope="session")
def export_dir(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its export through `sptrain export` (ONNX, tinygrad pickles, metadata; one per test session)."""
    out = tmp_path_factory.mktemp("export") / "models"
    assert sptrain_export(["export", str(tiny_checkpoint), "--out-dir", str(out)]) == 0
    return out
