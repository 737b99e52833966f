"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spt_models import make_tiny_checkpoint, sptrain_export
from spt_testutil import REPO_ROOT, built_once


def pytest_configure(config: pytest.Config) -> None:
    """Under `make test`'s parallel run each worker process takes its share of the cores for torch's threads."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint of tiny untrained models with fitted normalisers (one per test run)."""
    def build(folder: Path) -> None:
        make_tiny_checkpoint(folder / "checkpoints" / "epoch_0003.pt")

    return built_once(tmp_path_factory, "ckpt", build) / "checkpoints" / "epoch_0003.pt"


@pytest.fixture(scope="session")
def export_dir(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its export through `sptrain export` (ONNX, tinygrad pickles, metadata; one per test run)."""
    def build(folder: Path) -> None:
        assert sptrain_export(["export", str(tiny_checkpoint), "--out-dir", str(folder / "models")]) == 0

    return built_once(tmp_path_factory, "export", build) / "models"
