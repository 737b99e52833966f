"""``sptrain pipeline --profile P``: every profile is a choice, training builds the networks the profile packages,
the export is made for P, and the install stage routes a 2026 export through the runtime install of the checkout's
runtime (placement where that runtime reads it, the release's harness as smoke test)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sunnypilot_training.cli import pipeline
from sunnypilot_training.cli.main import build_parser
from sunnypilot_training.contract.profiles import get_profile, profile_ids
from sunnypilot_training.errors import ConfigError
from sunnypilot_training.export import exporter, runtime_export
from sunnypilot_training.integration.backup import INSTALLED, read_manifest
from sunnypilot_training.integration.runtime_detect import detect_runtime

from spt_runtime_micro import micro_source

STATEFUL_MODELD = ("# written for these tests: reads jits['input_specs']['new_img'] and "
                   "driving_warp_{w}x{h}_tinygrad.pkl\n")


@pytest.mark.parametrize("profile_id", profile_ids())
def test_every_profile_is_a_pipeline_choice(profile_id: str) -> None:
    args = build_parser().parse_args(["pipeline", "--profile", profile_id])
    pipeline._validate(args)
    assert args.profile == profile_id


def test_an_unknown_profile_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["pipeline", "--profile", "op-9.9"])
    assert exit_info.value.code == 2 and "op-2026.09" in capsys.readouterr().err


@pytest.mark.parametrize("profile_id", profile_ids())
def test_training_builds_the_networks_the_profile_packages(profile_id: str) -> None:
    overrides = pipeline.training_overrides(profile_id, list(pipeline.PRESETS["quick"]["overrides"]))
    trained = pipeline.settings_from_cfg(pipeline.load_config(overrides)).contract.profile
    assert get_profile(trained).trains_as == get_profile(profile_id).trains_as
    if get_profile(profile_id).trains_as == "op-0.10.1":  # the configured networks: nothing added
        assert overrides == pipeline.PRESETS["quick"]["overrides"]


def test_no_profile_leaves_training_as_configured() -> None:
    assert pipeline.training_overrides(None, ["model=tiny"]) == ["model=tiny"]


def test_a_training_override_of_other_networks_is_refused() -> None:
    with pytest.raises(ConfigError, match="packages the networks of op-0.10.1.*contract.profile=op-0.10.0"):
        pipeline.training_overrides("op-2026.07", ["contract.profile=op-0.10.0"])


def test_a_split_export_drops_the_manifest_of_an_earlier_2026_export(tmp_path: Path) -> None:
    (tmp_path / runtime_export.MANIFEST).write_text("{}")
    lines: list[str] = []
    exporter._drop_stale_manifest(tmp_path, "op-0.10.1", lines.append)
    assert not (tmp_path / runtime_export.MANIFEST).exists() and "op-0.10.1" in lines[0]


@pytest.fixture(scope="module")
def stateful_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An op-2026.09 export of the micro networks with its sptrain_export.json (the runtime half of an export)."""
    source = micro_source("op-2026.09")
    out = tmp_path_factory.mktemp("pipeline-export-2609")
    report = runtime_export.export_runtime(source, out, "CPU", ["1344x760"], log=lambda _: None)
    (out / runtime_export.MANIFEST).write_text(json.dumps(runtime_export.manifest(source, report, "CPU")))
    return out


def _stateful_checkout(root: Path) -> Path:
    modeld = root / "openpilot/selfdrive/modeld"
    (modeld / "models").mkdir(parents=True)
    (modeld / "modeld.py").write_text(STATEFUL_MODELD)
    return root


def test_the_pipeline_exports_for_its_profile_and_installs_through_the_runtime(
        stateful_export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = _stateful_checkout(tmp_path / "openpilot")
    calls: dict = {}

    def export_models(checkpoint, targets, device="CPU", expect_profile=None, log=print, cameras=None):
        out = next(iter(targets.values())).onnx.parent
        for path in stateful_export.iterdir():
            shutil.copy2(path, out / path.name)
        calls["export"] = {"checkpoint": checkpoint, "profile": expect_profile, "models": sorted(targets)}
        return {"profile": expect_profile, "files": [], "models": {}}

    monkeypatch.setattr(pipeline, "export_models", export_models)
    monkeypatch.setattr(pipeline, "format_summary", lambda report: "export summary")
    monkeypatch.setattr(pipeline, "_evaluate", lambda export_dir, data, progress: {"verdicts": {}})
    monkeypatch.setattr(pipeline, "write_report", lambda out, args, log, info, argv: calls.setdefault("info", info)
                        and out / "REPORT.md")
    args = build_parser().parse_args(["pipeline", "--checkpoint", str(tmp_path / "epoch_0001.pt"), "--profile",
                                      "op-2026.09", "--skip-drive", "--install", "--sunnypilot-root", str(checkout),
                                      "--output-dir", str(tmp_path / "run"), "--no-progress"])
    assert pipeline.run_pipeline(args) == 0
    assert calls["export"] == {"checkpoint": str(tmp_path / "epoch_0001.pt"), "profile": "op-2026.09",
                               "models": ["driving_policy", "driving_vision"]}
    assert calls["info"]["profile"] == "op-2026.09"
    models = detect_runtime(checkout).models_dir
    for name in json.loads((stateful_export / runtime_export.MANIFEST).read_text())["runtime_files"]:
        assert (models / name).read_bytes() == (stateful_export / name).read_bytes()
    backups = sorted((models / ".sptrain_backups").iterdir())
    manifest = read_manifest(backups[-1])
    assert manifest["status"] == INSTALLED and manifest["smoke_test"]["profile"] == "op-2026.09"
    assert manifest["smoke_test"]["frames"] > 0


@pytest.mark.parametrize("profile_id", profile_ids())
def test_the_export_stage_exports_for_every_profile(profile_id: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list = []

    def export_models(checkpoint, targets, device="CPU", expect_profile=None, log=print, cameras=None):
        asked.append((expect_profile, sorted(targets), device))
        return {"profile": expect_profile}

    monkeypatch.setattr(pipeline, "export_models", export_models)
    monkeypatch.setattr(pipeline, "format_summary", lambda report: "")
    monkeypatch.setattr(pipeline, "_evaluate", lambda export_dir, data, progress: {"verdicts": {}})
    infos: list = []
    monkeypatch.setattr(pipeline, "write_report", lambda out, args, log, info, argv: infos.append(info) or out)
    args = build_parser().parse_args(["pipeline", "--checkpoint", str(tmp_path / "epoch_0002.pt"), "--profile",
                                      profile_id, "--skip-drive", "--output-dir", str(tmp_path), "--no-progress"])
    assert pipeline.run_pipeline(args) == 0
    assert asked == [(profile_id, ["driving_policy", "driving_vision"], "CPU")]
    assert infos[0]["profile"] == profile_id and infos[0]["export"]["profile"] == profile_id
