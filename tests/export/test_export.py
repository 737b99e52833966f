"""Export: modeld's six files from a real tiny checkpoint, their contract, parity, and the failure paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest

from sunnypilot_training.contract.metadata import (
    compare_metadata,
    decode_output_slices,
    encode_output_slices,
    load_metadata,
)
from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.errors import ConfigError, ExportError
from sunnypilot_training.export import checks, exporter, onnx_export
from sunnypilot_training.export.artifacts import ArtifactPaths, resolve_model_names
from sunnypilot_training.fileio import sha256_file

from spt_testutil import REFERENCE_METADATA, REPO_ROOT

PROFILE = get_profile("op-0.10.1")
MODELD_FILES = sorted(f"{m}{s}" for m in ("driving_vision", "driving_policy")
                      for s in (".onnx", "_tinygrad.pkl", "_metadata.pkl", "_tinygrad.json"))
RELEASE = {"driving_vision": "v0.10.4_driving_vision_metadata.pkl",
           "driving_policy": "v0.10.4_driving_policy_metadata.pkl"}


def test_export_writes_exactly_modeld_files(export_dir: Path) -> None:
    assert sorted(p.name for p in export_dir.iterdir()) == MODELD_FILES  # no staging folder left behind
    assert all((export_dir / name).stat().st_size > 0 for name in MODELD_FILES)


@pytest.mark.parametrize("model", ["driving_vision", "driving_policy"])
def test_metadata_pickle_is_release_shaped(export_dir: Path, model: str) -> None:
    ours = load_metadata(export_dir / f"{model}_metadata.pkl")
    release = load_metadata(REFERENCE_METADATA / RELEASE[model])
    assert compare_metadata(ours, release) == []  # input names/order/shapes, output shape, slices in order
    assert ours["model_checkpoint"] == "tiny0001/3"
    assert ours == onnx_export.metadata_from_onnx(export_dir / f"{model}.onnx")  # what modeld's build would make


@pytest.mark.parametrize("model", ["driving_vision", "driving_policy"])
def test_onnx_is_self_contained_opset17_with_contract_props(export_dir: Path, model: str) -> None:
    path = export_dir / f"{model}.onnx"
    proto = onnx.load(str(path), load_external_data=False)
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == 17
    assert not [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert [p.name for p in export_dir.iterdir() if p.suffix not in (".onnx", ".pkl", ".json")] == []
    spec = PROFILE.model(model)
    types = {i.name: onnx.helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type) for i in proto.graph.input}
    assert list(types) == [i.name for i in spec.inputs]
    assert all(types[i.name] == np.dtype(i.dtype) for i in spec.inputs)
    if model == "driving_vision":
        assert set(types.values()) == {np.dtype(np.uint8)}
    props = {p.key: p.value for p in proto.metadata_props}
    assert decode_output_slices(props["output_slices"]) == spec.output_slices()
    assert props["model_checkpoint"] == "tiny0001/3"


@pytest.mark.parametrize("model", ["driving_vision", "driving_policy"])
def test_parity_numbers_are_within_tolerance_and_recorded(export_dir: Path, model: str) -> None:
    sidecar = json.loads((export_dir / f"{model}_tinygrad.json").read_text())
    assert set(sidecar["parity_vs_torch"]) == {"onnxruntime", "tinygrad_jit", "tinygrad_pickle"}
    for numbers in sidecar["parity_vs_torch"].values():
        assert 0 <= numbers["max_abs_diff"] <= numbers["tolerance"] < 0.5
    assert sidecar["onnx_sha256"] == sha256_file(export_dir / f"{model}.onnx")
    assert sidecar["tinygrad_pickle_sha256"] == sha256_file(export_dir / f"{model}_tinygrad.pkl")
    assert sidecar["device"] == "CPU" and sidecar["tinygrad_version"].count(".") >= 1
    assert [i["name"] for i in sidecar["inputs"]] == [i.name for i in PROFILE.model(model).inputs]
    assert sidecar["normalizers_fitted"] is True and sidecar["kernels"] > 0


FRESH_RUN = textwrap.dedent("""
    import os, pickle, sys
    os.environ["DEV"] = "CPU"
    import numpy as np
    from tinygrad import Tensor, dtypes
    data = np.load(sys.argv[2])
    with open(sys.argv[1], "rb") as f:
        run = pickle.load(f)
    inputs = {k: Tensor(data[k], dtype=dtypes.uint8).realize() if "img" in k
              else Tensor(data[k], device="NPY").realize() for k in data.files}
    out = run(**inputs).contiguous().realize().uop.base.buffer.numpy()
    np.save(sys.argv[3], out)
""")


@pytest.mark.parametrize("model", ["driving_vision", "driving_policy"])
def test_tinygrad_pickle_runs_in_a_fresh_process_like_modeld(export_dir: Path, model: str, tmp_path: Path) -> None:
    spec = PROFILE.model(model)
    inputs = checks.parity_inputs(spec, seed=7)  # other inputs than the export's own checks
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = {k: v for k, v in os.environ.items() if k != "DEV"}
    subprocess.run([sys.executable, "-c", FRESH_RUN, str(export_dir / f"{model}_tinygrad.pkl"),
                    str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")], check=True, env=env, cwd=tmp_path)
    got = np.load(tmp_path / "out.npy")
    expected = onnx_export.run_onnxruntime(export_dir / f"{model}.onnx", inputs)
    assert got.shape == (spec.output_width,)
    assert checks.parity(spec, expected, got, "tinygrad")["max_abs_diff"] <= checks.ATOL
    checks.check_parsed(spec, got, "tinygrad")


# --- failure paths: nothing is written -----------------------------------------------------------------------
def _export_vision(ckpt: Path, out: Path) -> None:
    exporter.export_models(ckpt, {"driving_vision": ArtifactPaths.in_dir(out, "driving_vision")}, log=lambda _: None)


def test_a_wrong_slice_in_the_onnx_raises_and_writes_nothing(tiny_checkpoint: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    real = onnx_export.onnx_metadata_props

    def shifted(spec, model_checkpoint):
        props = real(spec, model_checkpoint)
        slices = spec.output_slices()
        slices["lead"] = slice(slices["lead"].start, slices["lead"].stop - 1)
        props["output_slices"] = encode_output_slices(slices)
        return props

    monkeypatch.setattr(onnx_export, "onnx_metadata_props", shifted)
    with pytest.raises(ExportError, match="output_slices"):
        _export_vision(tiny_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_wrong_output_width_raises(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = exporter.load_export_source

    def narrow(*args, **kw):
        source = real(*args, **kw)
        model = source.models["driving_vision"]
        forward = model.forward
        model.forward = lambda img, big_img: forward(img, big_img)[:, :-1]  # one value short
        return source

    monkeypatch.setattr(exporter, "load_export_source", narrow)
    with pytest.raises(ExportError, match=r"graph outputs .*1575.*expected one output .*1576"):
        _export_vision(tiny_checkpoint, tmp_path / "out")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_parity_failure_names_the_runtime_and_numbers(tiny_checkpoint: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    real = onnx_export.run_onnxruntime
    monkeypatch.setattr(onnx_export, "run_onnxruntime", lambda path, feeds: real(path, feeds) + 0.5)
    with pytest.raises(ExportError, match=r"onnxruntime differs from torch by max \|diff\| 0.5.*tolerance"):
        _export_vision(tiny_checkpoint, tmp_path / "out")


def test_checkpoint_problems_are_export_errors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"trained for contract profile op-0.10.1 \(the networks of op-0.10.1\), "
                                          r"--profile asks for op-0.10.0"):
        exporter.export_models(tiny_checkpoint, {"driving_policy": ArtifactPaths.in_dir(tmp_path, "driving_policy")},
                               expect_profile="op-0.10.0", log=lambda _: None)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(tiny_checkpoint.read_bytes()[:1000])
    with pytest.raises(ExportError, match="cannot be loaded"):
        exporter.export_models(broken, {"driving_policy": ArtifactPaths.in_dir(tmp_path, "driving_policy")},
                               log=lambda _: None)


def test_checks_catch_bad_layouts_and_non_finite_outputs() -> None:
    spec = PROFILE.policy
    metadata = {"output_shapes": {"outputs": (1, 1001)}, "output_slices": spec.output_slices()}
    with pytest.raises(ExportError, match="output is 1001 wide"):
        checks.check_output_layout(spec, metadata, "x")
    bad = np.zeros((1, spec.output_width), np.float32)
    bad[0, 5] = np.nan
    with pytest.raises(ExportError, match="'plan' has non-finite"):
        checks.check_parsed(spec, bad, "torch")


def test_command_line_values_are_checked() -> None:
    assert resolve_model_names("policy,vision") == ["driving_vision", "driving_policy"]
    with pytest.raises(ConfigError, match="unknown model 'lidar'"):
        resolve_model_names("vision,lidar")
    from sunnypilot_training.export.tinygrad_compile import check_device

    with pytest.raises(ConfigError, match="tinygrad device"):
        check_device("cuda; rm -rf /")


def test_script_forms_show_help_from_the_repo_root() -> None:
    for script in ("export/export_vision.py", "export/export_policy.py"):
        result = subprocess.run([sys.executable, script, "--help"], cwd=REPO_ROOT, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "--onnx" in result.stdout and "--tinygrad" in result.stdout and "--metadata" in result.stdout


def test_a_vision_stage_checkpoint_cannot_export_its_policy(tiny_checkpoint: Path, tmp_path: Path) -> None:
    import torch

    from sunnypilot_training.export.artifacts import ArtifactPaths
    from sunnypilot_training.export.exporter import export_models
    from sunnypilot_training.training.checkpoint import save_atomic

    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    ckpt["stage"], ckpt["feature_cache_key"] = "vision", None
    bad = save_atomic(ckpt, tmp_path / "b" / "epoch_0001.pt")
    targets = {"driving_policy": ArtifactPaths.in_dir(tmp_path / "out", "driving_policy")}
    with pytest.raises(ExportError, match="vision stage"):
        export_models(bad, targets, log=lambda line: None)
    assert not (tmp_path / "out" / "driving_policy.onnx").exists()
