"""The ground-plane motion volume: on frames of a textured road seen from a known height, moved by a known distance
and yaw, its cost is lowest at that motion; it exports to ONNX and runs alike in onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sunnypilot_training.contract.camera import MEDMODEL
from sunnypilot_training.contract.profiles import get_profile
from sunnypilot_training.contract.yuv import FRAME_CHANNELS
from sunnypilot_training.errors import ConfigError
from sunnypilot_training.export.onnx_export import export_to_onnx, run_onnxruntime
from sunnypilot_training.training.config import load_config, settings_from_cfg
from sunnypilot_training.training.device import Runtime
from sunnypilot_training.training.models import VisionModel
from sunnypilot_training.training.models.motion import MotionGrid, MotionVolume, SpeedReading, resampling_table
from sunnypilot_training.training.trainer import make_models
from sunnypilot_training.training.validation import vision_metrics

from spt_models import vision_batch

SHAPE = (128, 256)  # one Y sub-grid of the 512 x 256 model frame
TEXEL_M = 0.08


def road_luma(height_m: float, forward_m: float, yaw_px: int, seed: int = 0) -> np.ndarray:
    """Channel 0 of a model frame (normalised luma) of a flat road with a fixed random texture, seen by the road
    camera ``height_m`` above it after driving ``forward_m``; the picture is then moved ``yaw_px`` columns to
    the right (a yaw to the left). Above the horizon: a flat grey sky."""
    rng = np.random.default_rng(seed)
    texture = rng.normal(0.0, 0.3, (400, 1200))  # lateral x (from -16 m), distance z (from 0 m) in texels
    scale = SHAPE[1] / MEDMODEL.width_px
    focal, cx, cy = MEDMODEL.focal_px * scale, MEDMODEL.cx_px * scale, MEDMODEL.cy_px * scale
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]) - yaw_px, indexing="ij")
    below = np.maximum(rows - cy, 1e-3)
    z = focal * height_m / below + forward_m
    x = (cols - cx) * height_m / below
    zi = np.clip(z / TEXEL_M, 0, texture.shape[1] - 2)
    xi = np.clip(x / TEXEL_M + 200, 0, texture.shape[0] - 2)
    z0, x0 = np.floor(zi).astype(int), np.floor(xi).astype(int)
    fz, fx = zi - z0, xi - x0
    value = ((1 - fx) * (1 - fz) * texture[x0, z0] + fx * (1 - fz) * texture[x0 + 1, z0]
             + (1 - fx) * fz * texture[x0, z0 + 1] + fx * fz * texture[x0 + 1, z0 + 1])
    return np.where(rows > cy + 1, value, 0.5).astype(np.float32)


def frame_pair(old: np.ndarray, new: np.ndarray) -> torch.Tensor:
    x = np.zeros((1, 2 * FRAME_CHANNELS) + SHAPE, np.float32)
    x[0, 0], x[0, FRAME_CHANNELS] = old, new
    return torch.from_numpy(x)


COARSE = MotionGrid(row_stride=4, col_stride=2, shift_step=2)  # an eighth of the comparisons


@pytest.mark.parametrize(("speed", "height", "yaw_px", "grid"),
                         [(0.0, 1.2, 0, MotionGrid()), (8.0, 1.0, 0, MotionGrid()), (15.0, 1.3, 3, MotionGrid()),
                          (25.0, 1.5, -5, MotionGrid()), (32.0, 1.2, 0, MotionGrid()), (12.0, 1.1, -4, COARSE),
                          (27.0, 1.4, 6, COARSE)])
def test_lowest_cost_at_the_true_motion(speed: float, height: float, yaw_px: int, grid: MotionGrid) -> None:
    volume = MotionVolume(MEDMODEL, SHAPE, 8, 8, grid)
    delta = speed * 0.2  # metres driven between frames t-4 and t
    x = frame_pair(road_luma(height, 0.0, 0), road_luma(height, delta, yaw_px))
    with torch.no_grad():
        cost = volume.volume(x)[0].mean(dim=-1).numpy()  # (Q, S) over every band
    q, s = np.unravel_index(np.argmin(cost), cost.shape)
    ratios = np.linspace(0.0, grid.ratio_max, grid.ratios)
    step = ratios[1]
    assert abs(ratios[q] - delta / height) <= step + 1e-6, (ratios[q], delta / height)
    assert s * grid.shift_step - grid.max_shift_px == -yaw_px  # column c of frame t shows column c + shift of t-4
    # and the speed curve the model reads has its minimum there too (0 after the per-band normalisation)
    with torch.no_grad():
        curves = volume.curves(x)[0].numpy().reshape(-1, grid.bands + 1)
    assert abs(int(np.argmin(curves[:grid.ratios, -1])) - q) <= 1


def test_curves_do_not_depend_on_the_picture_contrast() -> None:
    volume = MotionVolume(MEDMODEL, SHAPE, 8, 8)
    old, new = road_luma(1.2, 0.0, 0), road_luma(1.2, 3.0, 2)
    with torch.no_grad():
        a = volume.curves(frame_pair(old, new)).reshape(-1, volume.grid.bands + 1)
        b = volume.curves(frame_pair(3.0 * old + 0.2, 3.0 * new + 0.2)).reshape(-1, volume.grid.bands + 1)
    contrast = volume.n_ratios + volume.n_shifts  # rows: the curves, the log contrast, the two soft argmins
    same = [i for i in range(a.shape[0]) if i != contrast]
    # equal up to the floor EPS that keeps a featureless picture finite
    torch.testing.assert_close(a[same], b[same], atol=5e-3, rtol=5e-3)
    torch.testing.assert_close(b[contrast] - a[contrast], torch.full_like(a[contrast], np.log(3.0)), atol=5e-3, rtol=0)


def reference_volume(x: np.ndarray, grid: MotionGrid) -> np.ndarray:
    """(Q, S, bands) for one frame pair (12, H, W), pixel by pixel from the resampling table."""
    row_of, column_of, rows, ratios = resampling_table(MEDMODEL, SHAPE, grid)
    old, new = x[0], x[FRAME_CHANNELS]
    cols = np.arange(0, SHAPE[1] - 2 * grid.margin_px, grid.col_stride)  # the compared columns, from the margin
    shifts = range(0, 2 * grid.max_shift_px + 1, grid.shift_step)
    out = np.zeros((len(ratios), len(shifts), len(rows)))
    for q in range(len(ratios)):
        for i, r in enumerate(rows):
            k = q * len(rows) + i
            for si, j in enumerate(shifts):
                moved = old[row_of[k], column_of[k, j + cols]]
                out[q, si, i] = np.abs(moved - new[r, grid.margin_px + cols]).mean()
    return out.reshape(len(ratios), len(shifts), grid.bands, -1).mean(axis=-1)


@pytest.mark.parametrize("grid", [MotionGrid(), MotionGrid(col_stride=2, shift_step=2),
                                  MotionGrid(row_stride=4, col_stride=3, shift_step=2)])
def test_the_volume_is_the_pixel_by_pixel_cost_and_the_export_path_gives_the_same(grid: MotionGrid,
                                                                                   monkeypatch) -> None:
    """The volume gathers only the columns its shifts compare (every k-th, k = gcd(column stride, shift step)) and
    in torch picks them with one IndexSelect; the exported graph uses a MatMul and a GatherElements instead."""
    volume = MotionVolume(MEDMODEL, SHAPE, 8, 8, grid)
    x = frame_pair(road_luma(1.3, 0.0, 0, seed=2), road_luma(1.3, 3.1, -2, seed=2))
    with torch.no_grad():
        got = volume.volume(x)[0].numpy()
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        exported = volume.volume(x)[0].numpy()
    np.testing.assert_allclose(got, reference_volume(x[0].numpy(), grid), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got, exported)


def test_a_blank_frame_t4_gives_flat_curves_not_rounding_noise() -> None:
    """modeld's first frames pair a blank frame t-4 with a real frame t: every cost is the same up to float
    rounding, and the curves must read flat (the floor of the spread) instead of that rounding magnified, which
    differs between runtimes. Here the rounding is stood in for by a blank frame with noise of less than a
    ten-thousandth of a grey level."""
    volume = MotionVolume(MEDMODEL, SHAPE, 8, 8)
    blank = -2.0 + 1e-6 * np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)
    x = frame_pair(blank, road_luma(1.2, 0.0, 0))
    with torch.no_grad():
        speed, yaw, _ = volume.curve_parts(x)
    assert speed.abs().max() < 1e-3 and yaw.abs().max() < 1e-3


def test_table_rows_come_from_above_and_columns_towards_the_centre() -> None:
    row_of, column_of, rows, ratios = resampling_table(MEDMODEL, SHAPE, MotionGrid())
    row_of = row_of.reshape(len(ratios), len(rows))
    assert (row_of[0] == rows).all()  # q = 0: no motion
    assert (np.diff(row_of, axis=0) <= 0).all()  # faster: the same road point was farther up the picture
    column_of = column_of.reshape(len(ratios), len(rows), -1)
    left, right = column_of[-1, -1, 0], column_of[-1, -1, -1]
    assert column_of[0, -1, 0] < left and right < column_of[0, -1, -1]  # and closer to the centre


def test_a_grid_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        resampling_table(MEDMODEL, SHAPE, MotionGrid(below_horizon_px=200))
    with pytest.raises(ValueError, match="does not fit"):
        resampling_table(MEDMODEL, SHAPE, MotionGrid(max_shift_px=20, margin_px=16))
    with pytest.raises(ValueError, match="does not fit"):  # the shifts must end at the largest one
        resampling_table(MEDMODEL, SHAPE, MotionGrid(max_shift_px=28, shift_step=3))


def test_a_checkpoint_rebuilds_with_the_grid_it_was_trained_with() -> None:
    narrow = {"max_shift_px": 8, "margin_px": 16}
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True, motion_grid=narrow)
    rebuilt = VisionModel(**model.model_args)
    assert rebuilt.motion.grid == MotionGrid(**narrow) != MotionGrid()
    rebuilt.load_state_dict(model.state_dict())  # the same shapes: the yaw curve has 2 * 8 + 1 shifts
    assert rebuilt.motion.n_shifts == 17
    assert VisionModel("op-0.10.1", heads="mdn").model_args["motion_grid"] is None


def test_vision_model_with_the_motion_volume_exports_alike(tmp_path) -> None:
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True).eval()
    assert model.model_args["motion_volume"] is True
    assert VisionModel(**model.model_args).motion is not None
    assert not any("motion" in k and ("pick_rows" in k or "column_of" in k) for k in model.state_dict())
    spec = get_profile("op-0.10.1").vision
    g = torch.Generator().manual_seed(1)
    inputs = tuple(torch.randint(0, 256, i.shape, dtype=torch.uint8, generator=g) for i in spec.inputs)
    with torch.no_grad():
        expected = model(*inputs).numpy()
        without = VisionModel("op-0.10.1", heads="mdn").eval()
        without.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("motion")})
        assert not np.allclose(without(*inputs).numpy(), expected)  # the volume's features reach the output
    path = export_to_onnx(model, spec, inputs, tmp_path / "vision.onnx", "test/0")
    got = run_onnxruntime(path, {i.name: x.numpy() for i, x in zip(spec.inputs, inputs)})
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_config_key_reaches_the_model() -> None:
    for value, built in (("true", True), ("false", False)):
        settings = settings_from_cfg(load_config([f"vision.motion_volume={value}"]))
        models = make_models(settings, Runtime(torch.device("cpu"), "fp32"))
        assert (models.vision.motion is not None) is built
        assert models.model_args["vision"]["motion_volume"] is built
    with pytest.raises(ConfigError):
        VisionModel("op-0.10.1", heads="nope", motion_volume=True)


def textured_pairs(speeds: np.ndarray, height: float, seed: int) -> torch.Tensor:
    return torch.cat([frame_pair(road_luma(height, 0.0, 0, seed + i), road_luma(height, 0.2 * v, 0, seed + i))
                      for i, v in enumerate(speeds)])


def test_the_branch_learns_the_speed_of_a_road_it_never_saw() -> None:
    """A few hundred steps on the motion branch alone (the loss part the vision model adds for it) read the speed of
    new textures at speeds between the trained ones to within 3 m/s; before training it is far off."""
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True)
    train_v = np.linspace(1.0, 31.0, 32)
    test_v = np.array([4.0, 11.5, 17.0, 26.5])
    x_train, x_test = textured_pairs(train_v, 1.2, 0), textured_pairs(test_v, 1.2, 100)
    y_train = torch.tensor(train_v, dtype=torch.float32)
    params = list(model.motion.parameters()) + list(model.motion_speed.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    with torch.no_grad():
        curves_train, curves_test = model.motion.curves(x_train), model.motion.curves(x_test)
        before = np.abs(model.motion_speed_mps(model.motion.readout(curves_test)).numpy() - test_v).mean()
    for _ in range(300):
        opt.zero_grad()
        pred = model.motion_speed_mps(model.motion.readout(curves_train))
        torch.nn.functional.smooth_l1_loss(pred, y_train).backward()
        opt.step()
    with torch.no_grad():
        after = np.abs(model.motion_speed_mps(model.motion.readout(curves_test)).numpy() - test_v).mean()
    assert before > 5.0 and after < 3.0, (before, after)


def test_vision_loss_holds_the_motion_part_only_with_the_volume() -> None:
    batch = vision_batch(2)
    torch.manual_seed(0)
    _, parts = VisionModel("op-0.10.1", heads="mdn", motion_volume=True).loss(batch)
    _, plain = VisionModel("op-0.10.1", heads="mdn").loss(batch)
    assert "motion_speed" in parts and parts["motion_speed"] > 0 and "motion_speed" not in plain


class _Items:
    """A dataset of the items of one vision batch (what the validation reads)."""

    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["img"])

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        return {key: v[k] for key, v in self.batch.items()}


def test_validation_reports_the_branch_speed_error() -> None:
    batch = vision_batch(3)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True).eval()
    metrics = vision_metrics(model, _Items(batch), torch.device("cpu"))
    with torch.no_grad():
        expected = (model.branch_readings(batch["img"])[0] - batch["pose"][:, 0]).abs().mean().item()
    assert metrics["motion_speed_err_mps"] == pytest.approx(expected, rel=1e-5)
    assert "motion_speed_err_mps" not in vision_metrics(VisionModel("op-0.10.1", heads="mdn").eval(), _Items(batch),
                                                        torch.device("cpu"))


def test_the_speed_channel_carries_the_branch_reading() -> None:
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True, speed_channel=True).eval()
    batch = vision_batch(2)
    with torch.no_grad():
        hidden = model.features(batch["img"], batch["big_img"])
        plain = VisionModel(**{**model.model_args, "speed_channel": False})
        plain.load_state_dict(model.state_dict())
        other = plain.eval().features(batch["img"], batch["big_img"])
        reading = model.branch_readings(batch["img"])[0]
    assert torch.allclose(hidden[:, -1] * 10.0, reading, atol=1e-5)
    assert torch.equal(hidden[:, :-1], other[:, :-1]) and not torch.allclose(hidden[:, -1], other[:, -1])
    assert VisionModel(**model.model_args).speed_channel is True
    with pytest.raises(ConfigError, match="motion_volume"):
        VisionModel("op-0.10.1", heads="mdn", speed_channel=True)
    with pytest.raises(ConfigError, match="vision.speed_channel"):
        settings_from_cfg(load_config(["vision.motion_volume=false", "vision.speed_channel=true"]))


def test_the_ratio_reading_times_the_true_height_is_the_speed_before_any_training() -> None:
    """The ratio x height reading starts as the whole road's soft argmin: given the true camera height it reads
    the speed of a textured road within a step of the grid, at every height (the ratio alone would not)."""
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True, speed_reading="ratio_height")
    reading = model.motion_speed
    assert isinstance(reading, SpeedReading)
    step_mps = model.motion.grid.ratio_max / (model.motion.grid.ratios - 1) / 0.2  # per metre of height
    for height, speed in ((1.0, 9.0), (1.3, 18.0), (1.6, 27.0)):
        x = frame_pair(road_luma(height, 0.0, 0, 7), road_luma(height, 0.2 * speed, 0, 7))
        with torch.no_grad():
            parts = model.motion.curve_parts(x)
            got = float(reading.ratio(parts[0], parts[2])[0]) * height
        assert abs(got - speed) <= step_mps * height, (height, got, speed)


def test_the_speed_loss_does_not_reach_the_height_readout() -> None:
    """Only the labelled camera height trains the height readout; the speed loss trains the ratio's few
    parameters (and could otherwise turn the height into a memorised speed)."""
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True, speed_reading="ratio_height")
    batch = vision_batch(3)
    _, parts = model.loss(batch)
    assert parts["motion_height"] > 0 and parts["motion_speed"] > 0
    hidden, (speed, height), _, _ = model._features(batch["img"], batch["big_img"])
    speed.sum().backward()
    assert model.motion_speed.height.weight.grad is None or not model.motion_speed.height.weight.grad.any()
    assert model.motion_speed.prior.grad.abs().sum() > 0 and model.motion_speed.band_weight.grad.abs().sum() > 0
    model.zero_grad()
    height.sum().backward()
    assert model.motion_speed.height.weight.grad.abs().sum() > 0


def test_the_ratio_height_reading_exports_alike_and_is_validated(tmp_path) -> None:
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", heads="mdn", motion_volume=True, speed_reading="ratio_height",
                        speed_channel=True, motion_grid={"row_stride": 4, "col_stride": 2, "shift_step": 2}).eval()
    rebuilt = VisionModel(**model.model_args)
    assert rebuilt.speed_reading == "ratio_height" and rebuilt.motion.grid == COARSE
    rebuilt.load_state_dict(model.state_dict())
    batch = vision_batch(3)
    metrics = vision_metrics(model, _Items(batch), torch.device("cpu"))
    with torch.no_grad():
        speed, height = model.branch_readings(batch["img"])
        hidden = model.features(batch["img"], batch["big_img"])
    assert torch.allclose(hidden[:, -1] * 10.0, speed, atol=1e-5)
    assert metrics["motion_height_err_m"] == pytest.approx(
        (height - batch["road_transform"][:, 2]).abs().mean().item(), rel=1e-5)
    spec = get_profile("op-0.10.1").vision
    inputs = (batch["img"][:1], batch["big_img"][:1])
    with torch.no_grad():
        expected = model(*inputs).numpy()
    path = export_to_onnx(model, spec, inputs, tmp_path / "vision.onnx", "test/0")
    got = run_onnxruntime(path, {i.name: x.numpy() for i, x in zip(spec.inputs, inputs)})
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_the_reading_and_grid_keys_are_checked() -> None:
    settings = settings_from_cfg(load_config(["vision.motion_volume=true", "vision.speed_reading=ratio_height",
                                              "vision.motion_grid={row_stride: 4, shift_step: 2}"]))
    models = make_models(settings, Runtime(torch.device("cpu"), "fp32"))
    assert models.vision.speed_reading == "ratio_height"
    assert models.vision.motion.grid == MotionGrid(row_stride=4, col_stride=2, shift_step=2)  # merged with the default
    assert settings_from_cfg(load_config([])).vision.motion_grid == {"row_stride": 2, "col_stride": 2, "shift_step": 2}
    assert settings_from_cfg(load_config(["vision.motion_grid=null"])).vision.motion_grid is None  # the full grid
    with pytest.raises(ConfigError, match="vision.speed_reading"):
        settings_from_cfg(load_config(["vision.speed_reading=both"]))
    with pytest.raises(ConfigError, match="vision.motion_grid"):  # the config knows the grid's keys
        settings_from_cfg(load_config(["vision.motion_grid={rows: 4}"]))
    with pytest.raises(ConfigError, match="vision.motion_grid.rows"):  # and a key added anyway is refused
        settings_from_cfg(load_config(["+vision.motion_grid.rows=4"]))
    with pytest.raises(ConfigError, match="speed_reading"):
        VisionModel("op-0.10.1", heads="mdn", speed_reading="both")
