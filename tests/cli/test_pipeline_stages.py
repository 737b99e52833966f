"""Which stages ``sptrain pipeline`` runs: a run that skips training and export only collects and needs no
checkpoint; one that exports without a checkpoint says how to get one."""

from __future__ import annotations

from pathlib import Path

import pytest

from sunnypilot_training.cli import pipeline
from sunnypilot_training.cli.main import build_parser
from sunnypilot_training.errors import ConfigError


def _args(out: Path, *extra: str):
    args = build_parser().parse_args(["pipeline", "--output-dir", str(out), "--no-progress", "--skip-collect",
                                      "--skip-train", *extra])
    args.argv = ["pipeline", "--skip-collect", "--skip-train", *extra]
    return args


def test_skipping_training_and_export_needs_no_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert pipeline.run_pipeline(_args(out, "--skip-export")) == 0
    assert not (out / "export").exists() and not (out / "evaluation.json").exists()
    assert (out / "REPORT.md").is_file()


def test_exporting_without_a_checkpoint_names_the_folder_and_the_ways_out(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        pipeline.run_pipeline(_args(out))
    message = str(err.value)
    assert str(out / "train" / "checkpoints") in message
    assert "--checkpoint PATH" in message and "--skip-export" in message
