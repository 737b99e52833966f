"""The 2026 runtimes: fused graphs, the runtime pickles and the per-release harnesses (micro networks: seconds)."""

from __future__ import annotations

import io
import json
import pickle

import numpy as np
import onnx
import pytest
import torch

from sunnypilot_training.contract.nv12 import nv12_layout, pack_nv12, warp_nv12
from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.errors import ExportError
from sunnypilot_training.export import onnx_export, runtime_export
from sunnypilot_training.export.fused import PlanAction, StatefulGraph, SupercomboGraph
from sunnypilot_training.export.oob import dump_oob, is_oob, load_oob
from sunnypilot_training.export.runtime_reference import make_frames, run_reference

from spt_runtime_micro import micro_source

CAMERA = "1344x760"


def test_nv12_layout_matches_the_device_buffers() -> None:
    # facts from openpilot's nv12_info.py: (stride, y_height, uv_height, size)
    big, small = nv12_layout(1928, 1208), nv12_layout(1344, 760)
    assert (big.stride, big.y_height, big.uv_height, big.size) == (2048, 1216, 608, 4804608)
    assert (small.stride, small.y_height, small.uv_height, small.size) == (1408, 768, 384, 2428928)
    assert small.copy_size == 1408 * (768 + 384)


def test_numpy_warp_samples_the_planes_in_the_model_channel_order() -> None:
    layout = nv12_layout(1344, 760)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 256, (760, 1344), dtype=np.uint8)
    uv = rng.integers(0, 256, (380, 1344), dtype=np.uint8)
    identity = np.eye(3, dtype=np.float32)
    out = warp_nv12(pack_nv12(y, uv, layout), identity, layout)
    assert out.shape == (6, 128, 256) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0], y[0:256:2, 0:512:2])
    np.testing.assert_array_equal(out[1], y[1:256:2, 0:512:2])
    np.testing.assert_array_equal(out[2], y[0:256:2, 1:512:2])
    np.testing.assert_array_equal(out[4], uv[:128, 0:512:2])  # U at the half-size grid
    np.testing.assert_array_equal(out[5], uv[:128, 1:512:2])
    far = np.array([[1, 0, 5000], [0, 1, 5000], [0, 0, 1]], np.float32)  # off the image: clamped to the corner
    assert (warp_nv12(pack_nv12(y, uv, layout), far, layout)[0] == y[-1, -1]).all()


def test_out_of_band_pickle_round_trips_and_moves_buffers_out() -> None:
    obj = {"metadata": {"a": slice(0, 3)}, (1344, 760): np.arange(1000, dtype=np.float32)}
    f = io.BytesIO()
    dump_oob(obj, f)
    data = f.getvalue()
    assert is_oob(data[:16]) and not is_oob(pickle.dumps(obj, protocol=4)[:16])
    assert len(data) > 4000 and data.count(np.arange(1000, dtype=np.float32).tobytes()) == 1
    back = load_oob(io.BytesIO(data))
    assert back["metadata"] == obj["metadata"]
    np.testing.assert_array_equal(back[(1344, 760)], obj[(1344, 760)])


def _fallback_action(plan: np.ndarray, lat_t: float, long_t: float) -> tuple[float, float]:
    """The runtime's plan fallback (get_accel_from_plan / get_curvature_from_plan), written from its formulas."""
    from sunnypilot_training.contract.constants import T_IDXS

    speeds, accels, yaws, rates = plan[:, 3], plan[:, 6], plan[:, 11], plan[:, 14]
    v0 = speeds[0]
    v_target = (v0 + long_t / 0.3 * (np.interp(0.3, T_IDXS, speeds) - v0) if long_t < 0.3
                else np.interp(long_t, T_IDXS, speeds))
    accel = 2 * (v_target - v0) / long_t - accels[0]
    psi = lat_t / 0.3 * np.interp(0.3, T_IDXS, yaws) if lat_t < 0.3 else np.interp(lat_t, T_IDXS, yaws)
    v = max(v0, 1.0)
    curvature = 2 * psi / (v * lat_t) - rates[0] / v
    return curvature * v * v, accel


@pytest.mark.parametrize("lat_t,long_t", [(0.25, 0.45), (0.4, 0.2), (1.3, 2.7)])
def test_action_is_the_runtime_fallback_of_the_plan(lat_t: float, long_t: float) -> None:
    rng = np.random.default_rng(3)
    plan = rng.normal(0, 0.3, (33, 15)).astype(np.float32)
    plan[:, 3] += np.linspace(12, 18, 33)
    got = PlanAction()(torch.from_numpy(plan)[None], torch.tensor([[lat_t, long_t]])).numpy()[0]
    # the runtime divides action[0] by max(1, v_ego)^2: with v_ego = the plan's speed it gets back our curvature
    np.testing.assert_allclose(got, _fallback_action(plan, lat_t, long_t), rtol=1e-4, atol=1e-5)


def test_stateful_graph_equals_the_supercombo_fed_with_the_runtime_history() -> None:
    source = micro_source("op-2026.09")
    profile = source.profile
    supercombo = SupercomboGraph(source.models["driving_vision"], source.models["driving_policy"], profile.graph)
    stateful = StatefulGraph(supercombo).eval()
    rng = np.random.default_rng(0)
    state = [torch.zeros(i.shape, dtype=torch.uint8 if i.dtype == "uint8" else torch.float32)
             for i in profile.graph.inputs[4:]]
    frames = [torch.from_numpy(rng.integers(0, 256, (2, 6, 128, 256), dtype=np.uint8)) for _ in range(9)]
    pulses = torch.zeros(9, 8)
    pulses[6, 3] = 1.0
    hidden, tc, action_t = [], torch.tensor([[1.0, 0.0]]), torch.tensor([[0.25, 0.45]])
    with torch.no_grad():
        for t in range(9):
            out, *state = stateful(frames[t], pulses[t], tc, action_t, *state)
            older = frames[t - 4] if t >= 4 else torch.zeros_like(frames[t])
            img = torch.cat([older[0:1], frames[t][0:1]], 1)
            big = torch.cat([older[1:2], frames[t][1:2]], 1)
            past = torch.stack([hidden[t - 4 * (24 - k)] if t - 4 * (24 - k) >= 0 else torch.zeros(512)
                                for k in range(24)])[None]
            window = torch.zeros(100, 8)
            window[100 - (t + 1):] = pulses[: t + 1]
            pulse = window.reshape(25, 4, 8).amax(1)[None]
            expected, current = supercombo.run(img, big, past, pulse, tc, action_t)
            hidden.append(current[0])
            torch.testing.assert_close(out, expected)


def test_sunnypilots_action_is_an_mdn_whose_means_are_the_raw_action() -> None:
    graphs = {}
    for pid in ("op-2026.09", "sp-2026.10"):  # the same seed: the same micro networks
        source = micro_source(pid)
        graphs[pid] = SupercomboGraph(source.models["driving_vision"], source.models["driving_policy"],
                                      source.profile.graph)
    rng = np.random.default_rng(1)
    img = [torch.from_numpy(rng.integers(0, 256, (1, 12, 128, 256), dtype=np.uint8)) for _ in range(2)]
    past, pulse = torch.randn(1, 24, 512), torch.zeros(1, 25, 8)
    with torch.no_grad():
        outs = {pid: g.run(*img, past, pulse, torch.tensor([[1.0, 0.0]]), torch.tensor([[0.25, 0.45]]))[0]
                for pid, g in graphs.items()}
    raw = outs["op-2026.09"][:, get_profile("op-2026.09").graph.output_slices()["action"]]
    mdn = outs["sp-2026.10"][:, get_profile("sp-2026.10").graph.output_slices()["action"]]
    assert raw.shape == (1, 2) and mdn.shape == (1, 4)
    torch.testing.assert_close(mdn[:, :2], raw)  # the means sunnypilot's parser returns
    assert torch.count_nonzero(mdn[:, 2:]) == 0  # log-stds of 0: a std of 1, not a trained one
    torch.testing.assert_close(outs["sp-2026.10"][:, :2574], outs["op-2026.09"][:, :2574])


@pytest.fixture(scope="module", params=["op-0.11.1", "op-2026.07", "op-2026.09"])
def runtime_export_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    source = micro_source(request.param)
    stage = tmp_path_factory.mktemp(request.param)
    if source.profile.runtime.packaging == "combined":
        for name, model in source.models.items():
            spec = source.profile.model(name)
            inputs = tuple(torch.zeros(i.shape, dtype=torch.uint8 if i.dtype == "uint8" else torch.float32)
                           for i in spec.inputs)
            onnx_export.export_to_onnx(model, spec, inputs, stage / f"{name}.onnx", source.model_checkpoint)
    report = runtime_export.export_runtime(source, stage, "CPU", [CAMERA], log=lambda _: None)
    return source, stage, report


def test_every_runtime_export_runs_in_its_release_harness(runtime_export_dir: tuple) -> None:
    source, stage, report = runtime_export_dir
    harness = report["parity"]["tinygrad_runtime_harness"]
    assert harness["max_abs_diff"] <= harness["tolerance"]
    assert report["harness"]["frames"] == runtime_export.HARNESS_FRAMES
    for name in report["files"]:
        assert (stage / name).stat().st_size > 0, name
    expected = {"combined": ["driving_tinygrad.pkl"],
                "supercombo": ["driving_tinygrad.pkl", "driving_supercombo.onnx"],
                "stateful": ["driving_tinygrad.pkl", f"driving_warp_{CAMERA}_tinygrad.pkl", "driving_supercombo.onnx"]}
    assert report["files"] == expected[source.profile.runtime.packaging]


def test_the_harness_check_fails_on_another_drive(runtime_export_dir: tuple) -> None:
    source, stage, _ = runtime_export_dir
    frames = make_frames((1344, 760), runtime_export.HARNESS_FRAMES)
    got = np.load(stage / "harness_out.npz")["outputs"]  # what the fresh-process harness returned
    runtime_export._per_frame_parity(source.profile, run_reference(source.profile, stage, frames), got, "same")
    moved = dict(frames, tfm=frames["tfm"] + np.array([[0, 0, 7], [0, 0, 0], [0, 0, 0]], np.float32))
    with pytest.raises(ExportError, match="differs from torch"):
        runtime_export._per_frame_parity(source.profile, run_reference(source.profile, stage, moved), got, "moved")
    late = dict(frames, desire=np.roll(frames["desire"], 1, axis=0))  # the lane change one frame later
    with pytest.raises(ExportError, match="differs from torch"):
        runtime_export._per_frame_parity(source.profile, run_reference(source.profile, stage, late), got, "late")


def test_fused_onnx_carries_the_runtime_interface(runtime_export_dir: tuple) -> None:
    source, stage, _ = runtime_export_dir
    if source.profile.graph is None:
        pytest.skip("op-0.11.1 ships op-0.10.1's two ONNX files")
    proto = onnx.load(str(stage / "driving_supercombo.onnx"))
    assert [o.name for o in proto.graph.output][0] == "outputs"
    assert [o.name for o in proto.graph.output][1:] == [o for _, o in source.profile.state_pairs]
    metadata = onnx_export.metadata_from_onnx(stage / "driving_supercombo.onnx")
    assert metadata["output_slices"]["action"] == slice(2574, 2576)
    info = json.loads((stage / "driving_supercombo.metadata.json").read_text())
    assert info["inputs"]["features_buffer" if source.profile.runtime.packaging == "supercombo"
                          else "state_feat_q"][0] in ([1, 24, 512], [96, 1, 512])
