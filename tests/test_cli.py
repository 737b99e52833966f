"""The sptrain command line: contract show, doctor, help and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import build_parser, main
from sunnypilot_training.contract.metadata import load_metadata

from spt_testutil import REFERENCE_FILES, REFERENCE_METADATA


def _sptrain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sunnypilot_training.cli.main", *args],
                          capture_output=True, text=True)


@pytest.mark.parametrize("profile_id", ["op-0.10.1", "op-0.10.0"])
def test_contract_show_json_agrees_with_release_metadata(profile_id: str) -> None:
    result = _sptrain("contract", "show", "--profile", profile_id, "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["profile"] == profile_id
    for filename, pid, model in REFERENCE_FILES:
        if pid != profile_id:
            continue
        reference = load_metadata(REFERENCE_METADATA / filename)
        entry = shown["models"][model]
        assert list(entry["inputs"]) == list(reference["input_shapes"])  # names in order
        assert [tuple(v["shape"]) for v in entry["inputs"].values()] == list(reference["input_shapes"].values())
        assert tuple(entry["output_shape"]) == reference["output_shapes"]["outputs"]
        assert list(entry["output_slices"]) == list(reference["output_slices"])
        for name, (start, stop) in entry["output_slices"].items():
            assert slice(start, stop) == reference["output_slices"][name]


def test_contract_show_dtypes() -> None:
    shown = json.loads(_sptrain("contract", "show", "--json").stdout)
    assert shown["profile"] == "op-0.10.1"
    assert shown["models"]["driving_vision"]["inputs"]["img"]["dtype"] == "uint8"
    assert shown["models"]["driving_policy"]["inputs"]["features_buffer"]["dtype"] == "float32"


def test_unknown_profile_exits_2_listing_profiles() -> None:
    result = _sptrain("contract", "show", "--profile", "op-1.0")
    assert result.returncode == 2
    assert "op-0.10.1" in result.stderr and "op-0.10.0" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_contract_show_text_lists_every_slice(capsys: pytest.CaptureFixture) -> None:
    assert main(["contract", "show", "--profile", "op-0.10.0"]) == 0
    text = capsys.readouterr().out
    for name in ("lane_lines", "[917:1019]", "hypotheses=2 selection=3", "desired_curvature", "slice(-3, None"):
        assert name in text


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _subcommand_paths(sub, prefix + (name,))


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture) -> None:
    """The command as installed (a fresh process) shows its help; every subcommand's help, in this process."""
    result = _sptrain("--help")
    assert result.returncode == 0 and "usage: sptrain" in result.stdout
    paths = list(_subcommand_paths(build_parser()))
    assert ("contract", "show") in paths and ("doctor",) in paths
    for path in paths:
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code == 0 and "usage: sptrain " + " ".join(path) in capsys.readouterr().out, path


def test_doctor_reports_and_exits_0(tmp_path) -> None:
    result = _sptrain("doctor", "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for word in ("Python:", "torch:", "tinygrad:", "CARLA client:", "CARLA_ROOT:", "free disk"):
        assert word in result.stdout


def test_usage_error_exits_2() -> None:
    assert _sptrain("no-such-command").returncode == 2


def test_user_error_vs_bug_exit_codes(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    from sunnypilot_training.cli import contract_cmd
    from sunnypilot_training.errors import ShardFormatError

    def user_error(args):
        raise ShardFormatError("shard x.zarr: key img missing")

    def bug(args):
        raise RuntimeError("boom")

    monkeypatch.setattr(contract_cmd, "run_list", user_error)
    assert main(["contract", "list"]) == 2
    assert "shard x.zarr: key img missing" in capsys.readouterr().err
    monkeypatch.setattr(contract_cmd, "run_list", bug)
    assert main(["contract", "list"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_collect_script_form_from_repo_root(repo_root) -> None:
    result = subprocess.run([sys.executable, "collector/collect_data.py", "--help"], cwd=repo_root,
                            capture_output=True, text=True)
    assert result.returncode == 0 and "--episode-seconds" in result.stdout
    bad = subprocess.run([sys.executable, "collector/collect_data.py", "--scenario", "x", "--output", "/tmp/x",
                          "--episode-seconds", "5"], cwd=repo_root, capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_train_flags_become_hydra_overrides_that_survive_any_folder_name(tmp_path) -> None:
    from sunnypilot_training.cli.train_cmd import overrides_from
    from sunnypilot_training.training.config import load_config

    data, out = tmp_path / "runs (old), O'Brien" / "data", tmp_path / "out [1]"
    args = build_parser().parse_args(["train", "--data", str(data), "--output-dir", str(out), "--resume",
                                      "training.vision_epochs=3"])
    cfg = load_config(overrides_from(args))
    assert cfg.dataset.train_path == (data / "train").as_posix() and cfg.dataset.val_path == (data / "val").as_posix()
    assert cfg.output_dir == out.as_posix() and cfg.checkpoint == "latest" and cfg.training.resume is True
    assert cfg.training.vision_epochs == 3


def test_export_takes_the_newest_checkpoint_of_a_training_folder(tmp_path) -> None:
    from sunnypilot_training.cli.export_cmd import newest_checkpoint
    from sunnypilot_training.errors import ConfigError

    (tmp_path / "checkpoints").mkdir()
    for epoch in (2, 10, 9):
        (tmp_path / "checkpoints" / f"epoch_{epoch:04d}.pt").write_bytes(b"")
    newest = str(tmp_path / "checkpoints" / "epoch_0010.pt")
    assert newest_checkpoint(str(tmp_path)) == newest == newest_checkpoint(str(tmp_path / "checkpoints"))
    assert newest_checkpoint(newest) == newest
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        newest_checkpoint(str(tmp_path / "empty"))


def test_doctor_warns_about_windows_path_limits_only_when_they_bite(tmp_path) -> None:
    from sunnypilot_training.cli.doctor_cmd import LONG_PATH_ROOT_CHARS, long_path_lines

    assert long_path_lines(None) == ([], [])  # not Windows
    assert long_path_lines(True)[1] == []
    short, long = Path("C:/sp/training"), tmp_path / ("x" * LONG_PATH_ROOT_CHARS)
    assert long_path_lines(False, short)[1] == [] and "260" in long_path_lines(False, short)[0][0]
    [warning] = long_path_lines(False, long)[1]
    assert str(long) in warning and "long paths are off" in warning and "docs/windows.md" in warning


def test_doctor_names_the_carla_release_and_a_client_that_does_not_match(tmp_path, monkeypatch) -> None:
    from sunnypilot_training.cli import doctor_cmd

    launcher_name = "CarlaUE4.exe" if sys.platform == "win32" else "CarlaUE4.sh"
    root = tmp_path / "CARLA_0.9.16" / "WindowsNoEditor"
    root.mkdir(parents=True)
    (root / launcher_name).write_bytes(b"")
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path / "CARLA_0.9.16"))
    monkeypatch.setattr(doctor_cmd, "_version", lambda dist: "0.9.15" if dist == "carla" else None)
    lines, warnings = doctor_cmd._carla_lines()
    assert any("CARLA 0.9.16 (Unreal Engine 4)" in line and launcher_name in line for line in lines), lines
    assert any("client is 0.9.15 but the server in CARLA_ROOT is 0.9.16" in w for w in warnings), warnings
    monkeypatch.setenv("CARLA_ROOT", str(tmp_path / "CARLA_0.9.16" / "missing"))
    assert any("is not a directory" in w for w in doctor_cmd._carla_lines()[1])
