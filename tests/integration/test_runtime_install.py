"""sptrain install knows the checkout's runtime: detection from its modeld code, refusal of another runtime's export,
placement where that runtime reads its files, chunked forms moved aside, smoke test with the release's harness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sunnypilot_training.cli.main import main as sptrain
from sunnypilot_training.errors import InstallError
from sunnypilot_training.export import runtime_export
from sunnypilot_training.fileio import sha256_file
from sunnypilot_training.integration.runtime_detect import detect_runtime

from spt_runtime_micro import micro_source

# What each release's modeld.py reads, as marker text written for these tests (key names are facts; no upstream code)
MARKERS = {
    "op-0.10.1": "reads driving_vision_tinygrad.pkl and driving_vision_metadata.pkl",
    "op-0.10.0": "reads driving_vision_tinygrad.pkl; feeds lateral_control_params",
    "op-0.11.1": "reads MODELS_DIR / 'driving_tinygrad.pkl' then jits['metadata']['vision']",
    "op-2026.07": "reads load_oob(driving_tinygrad.pkl), jits['run_policy'], packs action_t",
    "op-2026.09": "reads jits['input_specs']['new_img'] and driving_warp_{w}x{h}_tinygrad.pkl",
}


def make_checkout(root: Path, profile_id: str, nested: bool = True) -> Path:
    modeld = root / ("openpilot/selfdrive/modeld" if nested else "selfdrive/modeld")
    (modeld / "models").mkdir(parents=True)
    if profile_id == "sp-2026.10":
        v2 = root / "openpilot/sunnypilot/modeld_v2"
        (v2 / "models").mkdir(parents=True)
        (v2 / "modeld.py").write_text("# stand-in: override path from os.environ['COMBINED_MODEL_PKL']\n")
        (v2 / "model_adapters.py").write_text("# stand-in: native adapter when 'input_specs' in jits\n")
        (modeld / "modeld.py").write_text(f"# stand-in: {MARKERS['op-2026.09']}\n")
    else:
        (modeld / "modeld.py").write_text(f"# stand-in: {MARKERS[profile_id]}\n")
    return root


@pytest.mark.parametrize("profile_id", [*MARKERS, "sp-2026.10"])
def test_the_runtime_is_read_from_the_checkouts_modeld(tmp_path: Path, profile_id: str) -> None:
    nested = profile_id.startswith("op-2026") or profile_id.startswith("sp")
    detected = detect_runtime(make_checkout(tmp_path, profile_id, nested))
    assert detected.profile_id == profile_id
    expected = ("openpilot/sunnypilot/modeld_v2/models" if profile_id == "sp-2026.10"
                else f"{'openpilot/' if nested else ''}selfdrive/modeld/models")
    assert detected.models_dir == tmp_path / expected


@pytest.mark.parametrize("text,message", [
    ("jits['metadata']['on_policy'] action_t", "vision \\+ on_policy runtime of early June 2026"),
    ("jits['run_policy'] action_t pickle.loads(read_file_chunked(", "plain pickle"),
    ("print('hello')", "matches no known modeld runtime"),
])
def test_runtimes_no_profile_covers_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "selfdrive/modeld").mkdir(parents=True)
    (tmp_path / "selfdrive/modeld/modeld.py").write_text(f"# stand-in: {text}\n")
    with pytest.raises(InstallError, match=message):
        detect_runtime(tmp_path)


@pytest.mark.parametrize("adapters,message", [
    ("# stand-in: native adapter on jits['variants'][f'{w}x{h}'] when 'variants' in jits\n", "per-camera"),
    ("# stand-in: legacy combined pickles only\n", "older modeld_v2"),
])
def test_a_sunnypilot_adapter_for_another_artifact_is_refused(tmp_path: Path, adapters: str, message: str) -> None:
    checkout = make_checkout(tmp_path, "sp-2026.10")
    (checkout / "openpilot/sunnypilot/modeld_v2/model_adapters.py").write_text(adapters)
    with pytest.raises(InstallError, match=message):
        detect_runtime(checkout)


@pytest.fixture(scope="module")
def stateful_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An op-2026.09 export folder (micro networks) with its sptrain_export.json."""
    source = micro_source("op-2026.09")
    out = tmp_path_factory.mktemp("export-2609")
    report = runtime_export.export_runtime(source, out, "CPU", ["1344x760"], log=lambda _: None)
    (out / runtime_export.MANIFEST).write_text(json.dumps(runtime_export.manifest(source, report, "CPU")))
    return out


def _as_profile(folder: Path, tmp_path: Path, profile_id: str) -> Path:
    copy = tmp_path / f"export-{profile_id}"
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / runtime_export.MANIFEST).read_text())
    (copy / runtime_export.MANIFEST).write_text(json.dumps(dict(manifest, profile=profile_id)))
    return copy


def test_an_export_for_another_runtime_is_refused_naming_both(stateful_export: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    root = make_checkout(tmp_path / "op", "op-2026.07")
    code = sptrain(["install", "--from-dir", str(stateful_export), "--sunnypilot-root", str(root)])
    err = capsys.readouterr().err
    assert code == 2
    assert "exported for profile op-2026.09" in err and "the checkout runs op-2026.07" in err
    assert "--profile op-2026.07" in err
    assert list((root / "openpilot/selfdrive/modeld/models").iterdir()) == []


def test_a_split_export_is_refused_by_a_2026_checkout(export_dir: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    root = make_checkout(tmp_path / "op", "op-2026.09")
    assert sptrain(["install", "--from-dir", str(export_dir), "--sunnypilot-root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "exported for profile op-0.10.1" in err and "the checkout runs op-2026.09" in err


def test_stateful_install_places_files_moves_chunks_aside_and_restores(stateful_export: Path, tmp_path: Path) -> None:
    root = make_checkout(tmp_path / "op", "op-2026.09")
    models = root / "openpilot/selfdrive/modeld/models"
    (models / "driving_tinygrad.pkl.chunkmanifest").write_text("1")
    (models / "driving_tinygrad.pkl.chunk00of01").write_bytes(b"stock model")
    (models / "driving_warp_1344x760_tinygrad.pkl").write_bytes(b"stock warp")
    assert sptrain(["install", "--from-dir", str(stateful_export), "--sunnypilot-root", str(root)]) == 0
    for name in ("driving_tinygrad.pkl", "driving_warp_1344x760_tinygrad.pkl", "driving_supercombo.onnx"):
        assert sha256_file(models / name) == sha256_file(stateful_export / name)
    assert not (models / "driving_tinygrad.pkl.chunkmanifest").exists()  # else the runtime reads the old chunks
    assert not (models / "driving_tinygrad.pkl.chunk00of01").exists()
    assert sptrain(["install", "--restore", "--sunnypilot-root", str(root)]) == 0
    assert (models / "driving_tinygrad.pkl.chunk00of01").read_bytes() == b"stock model"
    assert (models / "driving_warp_1344x760_tinygrad.pkl").read_bytes() == b"stock warp"
    assert not (models / "driving_tinygrad.pkl").exists()


def test_sunnypilot_install_names_the_pickle_for_combined_model_pkl(stateful_export: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    folder = _as_profile(stateful_export, tmp_path, "sp-2026.10")
    root = make_checkout(tmp_path / "sp", "sp-2026.10")
    assert sptrain(["install", "--from-dir", str(folder), "--sunnypilot-root", str(root)]) == 0
    models = root / "openpilot/sunnypilot/modeld_v2/models"
    assert sha256_file(models / "sptrain_driving_tinygrad.pkl") == sha256_file(folder / "driving_tinygrad.pkl")
    assert (models / "driving_warp_1344x760_tinygrad.pkl").is_file()
    out = capsys.readouterr().out
    assert f"COMBINED_MODEL_PKL={models / 'sptrain_driving_tinygrad.pkl'}" in out
    assert "smoke test passed" in out


def test_a_broken_pickle_fails_the_smoke_test_and_is_undone(stateful_export: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(stateful_export, folder)
    data = (folder / "driving_tinygrad.pkl").read_bytes()
    (folder / "driving_tinygrad.pkl").write_bytes(data[: len(data) // 2])
    root = make_checkout(tmp_path / "op", "op-2026.09")
    assert sptrain(["install", "--from-dir", str(folder), "--sunnypilot-root", str(root)]) == 2
    assert "install failed and was undone" in capsys.readouterr().err
    assert [p.name for p in (root / "openpilot/selfdrive/modeld/models").iterdir()] == [".sptrain_backups"]
