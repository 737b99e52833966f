"""Install into a sunnypilot-shaped checkout or a model folder: every path keeps or restores the originals."""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import shutil
from pathlib import Path

import pytest

from sunnypilot_training.cli import install_cmd
from sunnypilot_training.errors import InstallError, run_guarded
from sunnypilot_training.integration import backup, installer
from sunnypilot_training.integration.target import resolve_target
from sunnypilot_training.integration.validate import validate_files

from spt_testutil import REFERENCE_METADATA

MODELS = Path("selfdrive") / "modeld" / "models"
FOUR = ("vision_tinygrad", "vision_metadata", "policy_tinygrad", "policy_metadata")


def tree_state(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file under ``root`` (backups and caches excluded)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and ".sptrain_backups" not in p.parts and "__pycache__" not in p.parts}


def sptrain(argv: list[str]) -> int:
    """`sptrain install ...` through its own parser (the registration in cli/main.py is the lead's)."""
    parser = argparse.ArgumentParser(prog="sptrain")
    install_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_guarded(f"sptrain {args.command}", args.func, args)


def file_args(export_dir: Path, **replace: Path) -> list[str]:
    files = {slot: export_dir / f"driving_{slot}.pkl" for slot in FOUR}
    files.update(replace)
    return [arg for slot, path in files.items() for arg in ("--" + slot.replace("_", "-"), str(path))]


def manifests(models_dir: Path) -> list[dict]:
    return [json.loads((d / "manifest.json").read_text()) for d in sorted((models_dir / ".sptrain_backups").iterdir())]


def test_dry_run_changes_nothing(export_dir: Path, checkout: Path, capsys: pytest.CaptureFixture) -> None:
    before = tree_state(checkout)
    assert sptrain(["install", "--from-dir", str(export_dir), "--sunnypilot-root", str(checkout), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "driving_policy.onnx" in out and "add (new file)" in out
    assert "nothing was changed" in out
    assert tree_state(checkout) == before
    assert not (checkout / MODELS / ".sptrain_backups").exists()


def test_install_backs_up_smoke_tests_with_the_checkouts_parser_and_restores(export_dir: Path,
                                                                             checkout: Path) -> None:
    before = tree_state(checkout)
    assert sptrain(["install", "--from-dir", str(export_dir), "--sunnypilot-root", str(checkout)]) == 0
    models = checkout / MODELS
    for name in ("driving_vision_tinygrad.pkl", "driving_policy_metadata.pkl", "driving_policy.onnx"):
        assert (models / name).read_bytes() == (export_dir / name).read_bytes()
    [manifest] = manifests(models)
    assert manifest["status"] == "installed" and manifest["profile"] == "op-0.10.1"
    assert manifest["smoke_test"]["parser"] == str(checkout / "selfdrive/modeld/parse_model_outputs.py")
    assert manifest["smoke_test"]["shapes"]["driving_policy"]["plan"] == [1, 33, 15]
    backup_dir = next((models / ".sptrain_backups").iterdir())
    for entry in manifest["files"]:  # every replaced original is in the backup, byte for byte
        if entry["existed"]:
            digest = hashlib.sha256((backup_dir / entry["name"]).read_bytes()).hexdigest()
            assert digest == entry["original_sha256"] == before[str(MODELS / entry["name"])]
    assert {e["name"] for e in manifest["files"] if not e["existed"]} == {"driving_policy.onnx"}

    assert sptrain(["install", "--sunnypilot-root", str(checkout), "--restore"]) == 0
    assert tree_state(checkout) == before  # originals back, the added driving_policy.onnx removed
    statuses = [m["status"] for m in manifests(models)]
    assert statuses == ["restored", "pre_restore"]  # the installed files were snapshotted first: nothing is lost
    with pytest.raises(InstallError, match="nothing to restore"):
        installer.restore(resolve_target(checkout, None), log=lambda _: None)


def test_corrupted_metadata_is_refused_and_nothing_changes(export_dir: Path, checkout: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    evil = tmp_path / "driving_vision_metadata.pkl"
    evil.write_bytes(pickle.dumps({"output_slices": print}))  # a global other than builtins.slice
    before = tree_state(checkout)
    code = sptrain(["install", *file_args(export_dir, vision_metadata=evil), "--sunnypilot-root", str(checkout)])
    err = capsys.readouterr().err
    assert code == 2 and "--vision-metadata" in err and str(evil) in err and "only builtins.slice" in err
    assert tree_state(checkout) == before and not (checkout / MODELS / ".sptrain_backups").exists()


def test_truncated_tinygrad_pickle_fails_the_smoke_test_and_is_undone(export_dir: Path, checkout: Path,
                                                                      tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    truncated = tmp_path / "driving_vision_tinygrad.pkl"
    truncated.write_bytes((export_dir / "driving_vision_tinygrad.pkl").read_bytes()[:50_000])
    before = tree_state(checkout)
    code = sptrain(["install", *file_args(export_dir, vision_tinygrad=truncated), "--sunnypilot-root", str(checkout)])
    err = capsys.readouterr().err
    assert code == 2 and "install failed and was undone" in err
    assert "driving_vision_tinygrad.pkl cannot be loaded" in err
    assert tree_state(checkout) == before
    assert [m["status"] for m in manifests(checkout / MODELS)] == ["rolled_back"]


def test_a_checkout_parser_that_rejects_the_outputs_fails_the_install(export_dir: Path, make_checkout,
                                                                      standin_parser_source: str) -> None:
    strict = standin_parser_source + "\nParser.parse_policy_outputs = lambda self, outs: outs['missing_head']\n"
    root = make_checkout("strict", strict)
    before = tree_state(root)
    with pytest.raises(InstallError, match="KeyError: 'missing_head'"):
        files = validate_files({s: export_dir / f"driving_{s}.pkl" for s in FOUR})
        installer.install(resolve_target(root, None), files, log=lambda _: None)
    assert tree_state(root) == before


def test_interrupt_during_install_puts_the_originals_back(export_dir: Path, checkout: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    before = tree_state(checkout)

    def interrupted(*args, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(installer, "run_smoke_test", interrupted)
    with pytest.raises(KeyboardInterrupt):
        installer.install(resolve_target(checkout, None), validate_files(
            {s: export_dir / f"driving_{s}.pkl" for s in FOUR}), log=lambda _: None)
    assert tree_state(checkout) == before


def test_mismatched_vision_and_policy_profiles_are_refused(export_dir: Path, checkout: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    old_vision = REFERENCE_METADATA / "v0.10.0_driving_vision_metadata.pkl"
    before = tree_state(checkout)
    code = sptrain(["install", *file_args(export_dir, vision_metadata=old_vision), "--sunnypilot-root", str(checkout)])
    err = capsys.readouterr().err
    assert code == 2 and "vision metadata is profile op-0.10.0 but the policy metadata is profile op-0.10.1" in err
    assert tree_state(checkout) == before


def test_swapped_metadata_files_are_refused(export_dir: Path) -> None:
    files = {s: export_dir / f"driving_{s}.pkl" for s in FOUR}
    files["vision_metadata"] = export_dir / "driving_policy_metadata.pkl"
    with pytest.raises(InstallError, match="matches no contract profile.*other model's file"):
        validate_files(files)


def test_a_folder_that_is_not_a_checkout_is_refused(export_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "notes").mkdir()
    code = sptrain(["install", "--from-dir", str(export_dir), "--sunnypilot-root", str(tmp_path / "notes")])
    err = capsys.readouterr().err
    assert code == 2 and "does not look like a sunnypilot/openpilot checkout" in err and "selfdrive/modeld" in err
    assert list((tmp_path / "notes").iterdir()) == []


def test_models_dir_is_created_and_parsed_with_the_contract_parser(export_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "home" / ".comma" / "media" / "0" / "models"
    assert sptrain(["install", "--from-dir", str(export_dir), "--models-dir", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir() if p.is_file()) == sorted(
        p.name for p in export_dir.iterdir() if p.suffix in (".pkl", ".onnx"))
    [manifest] = manifests(target)
    assert manifest["smoke_test"]["parser"] == "contract.outputs" and not any(f["existed"] for f in manifest["files"])
    assert sptrain(["install", "--models-dir", str(target), "--restore"]) == 0
    assert [p.name for p in target.iterdir()] == [".sptrain_backups"]  # every added file removed again


def test_usage_errors(export_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert sptrain(["install", "--from-dir", str(tmp_path), "--models-dir", str(tmp_path / "m")]) == 2
    assert "missing ['driving_vision_tinygrad.pkl'" in capsys.readouterr().err
    assert sptrain(["install", "--models-dir", str(tmp_path / "m"), "--restore",
                    "--vision-onnx", str(export_dir / "driving_vision.onnx")]) == 2
    assert "--restore takes no files" in capsys.readouterr().err
    shutil.copy(export_dir / "driving_policy_metadata.pkl", tmp_path / "empty_tinygrad.pkl")
    (tmp_path / "empty_tinygrad.pkl").write_bytes(b"")
    assert sptrain(["install", *file_args(export_dir, policy_tinygrad=tmp_path / "empty_tinygrad.pkl"),
                    "--models-dir", str(tmp_path / "m")]) == 2
    assert "--policy-tinygrad" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_only_installs_still_in_effect_are_undone(tmp_path: Path) -> None:
    target = resolve_target(None, tmp_path)
    for status in ("installed", "rolled_back", "restored"):
        backup.create_backup(target, [], status)
    newest_in_effect = backup.latest_undoable(target)
    assert backup.read_manifest(newest_in_effect)["status"] == "installed"


def test_vision_and_policy_from_different_checkpoints_are_refused(export_dir: Path, tmp_path: Path) -> None:
    import pickle

    from sunnypilot_training.contract.metadata import load_metadata
    from sunnypilot_training.errors import InstallError
    from sunnypilot_training.integration.target import files_in_dir
    from sunnypilot_training.integration.validate import validate_files

    mixed = tmp_path / "mixed"
    shutil.copytree(export_dir, mixed)
    meta = load_metadata(mixed / "driving_policy_metadata.pkl")
    meta["model_checkpoint"] = "otherrun/9"
    (mixed / "driving_policy_metadata.pkl").write_bytes(pickle.dumps(meta))
    with pytest.raises(InstallError, match="otherrun/9"):
        validate_files(files_in_dir(mixed))
