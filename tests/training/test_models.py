"""Vision and policy models: contract layout, determinism, losses, overfitting, ONNX export (the export path of
export/onnx_export.py; tinygrad runs the real export in tests/export)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sunnypilot_training.contract.actions import accel_action
from sunnypilot_training.contract.constants import (
    DESIRE_LEN,
    FEATURE_LEN,
    HISTORY_BUFFER_LEN,
    IDX_N,
    IMG_SHAPE,
    LEAD_MHP_SELECTION,
    LEAD_TRAJ_LEN,
    LEAD_WIDTH,
    PLAN_WIDTH,
    T_IDXS,
    X_IDXS,
    LaneLine,
    LeadField,
    Plan,
)
from sunnypilot_training.contract.outputs import parse_outputs
from sunnypilot_training.contract.profiles import HeadKind, ModelSpec, get_profile, profile_ids
from sunnypilot_training.errors import ConfigError
from sunnypilot_training.export.onnx_export import check_onnx_file, export_to_onnx, run_onnxruntime
from sunnypilot_training.training.diffusion import DiffusionConfig
from sunnypilot_training.training.models import (
    PolicyModel,
    VisionModel,
    count_flops,
    count_parameters,
    desired_curvature_target,
)
from sunnypilot_training.training.models.blocks import cluster_samples
from sunnypilot_training.training.models.policy import LONG_ACTION_SCALE_MPS2, SPEED_PRIOR
from sunnypilot_training.training.models.vision import LANE_CENTRE_SCALE_M, lead_hypotheses
from sunnypilot_training.training.validation import predict_policy

from spt_models import vision_batch

PROFILES = profile_ids()
HEADS = ("diffusion", "mdn", "regression")
VISION_CASES = [(p, h) for p in PROFILES for h in HEADS]
LEAD_SHAPE = (LEAD_MHP_SELECTION, LEAD_TRAJ_LEN, LEAD_WIDTH)


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny models gain little from intra-op threads and lose a lot when the CPU is shared (oversubscription)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def diffusion_config(profile: str) -> DiffusionConfig:
    """Few steps and samples keep the unrolled graphs small (op-0.10.0's 5-hypothesis plan needs 8 samples)."""
    return DiffusionConfig(steps=2, export_samples=8 if profile == "op-0.10.0" else 4)


# --- fake batches with physically plausible labels ----------------------------------------------------------------
def turning_plan(speed_mps: torch.Tensor, yaw_rate: torch.Tensor) -> torch.Tensor:
    """(B, 33, 15) plan of a constant-speed, constant-yaw-rate drive (circle of radius v / yaw_rate)."""
    t = torch.as_tensor(T_IDXS, dtype=torch.float32)[None]  # (1, 33)
    v, w = speed_mps[:, None], yaw_rate[:, None]
    yaw = w * t
    plan = torch.zeros(len(speed_mps), IDX_N, PLAN_WIDTH)
    safe_w = torch.where(w.abs() < 1e-6, torch.full_like(w, 1e-6), w)
    plan[:, :, 0] = v / safe_w * torch.sin(yaw)
    plan[:, :, 1] = v / safe_w * (1 - torch.cos(yaw))
    plan[:, :, 3] = v.expand(-1, IDX_N)
    plan[:, :, 7] = (v * w).expand(-1, IDX_N)  # lateral acceleration, right positive
    plan[:, :, 11] = yaw
    plan[:, :, 14] = w.expand(-1, IDX_N)
    return plan


def policy_batch(profile: str, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    speed = 5 + 20 * torch.rand(batch, generator=g)
    yaw_rate = 0.2 * torch.rand(batch, generator=g) - 0.1
    desire = torch.zeros(batch, HISTORY_BUFFER_LEN, DESIRE_LEN)
    desire[::2, -3, 3] = 1.0  # a lane-change-left pulse in half the samples
    out = {
        "features_buffer": torch.randn(batch, HISTORY_BUFFER_LEN, FEATURE_LEN, generator=g),
        "traffic_convention": torch.tensor([[1.0, 0.0]]).expand(batch, 2).clone(),
        "plan": turning_plan(speed, yaw_rate),
        "desire_state": torch.nn.functional.one_hot(torch.randint(0, 8, (batch,), generator=g), 8).float(),
    }
    names = [i.name for i in get_profile(profile).policy.inputs]
    out["desire_pulse" if "desire_pulse" in names else "desire"] = desire
    if "lateral_control_params" in names:
        out["lateral_control_params"] = torch.stack([speed, torch.full_like(speed, 0.2)], dim=1)
        out["prev_desired_curv"] = torch.zeros(batch, HISTORY_BUFFER_LEN, 1)
    return out


def make_vision(profile: str, heads: str, batch: dict | None = None, **kw) -> VisionModel:
    torch.manual_seed(0)
    model = VisionModel(profile, "tiny", heads=heads, diffusion=diffusion_config(profile), **kw)
    model.fit_normalizers({k: v.numpy() for k, v in (batch or vision_batch(16, seed=1)).items()})
    return model


def make_policy(profile: str, head: str = "diffusion", speed_prior: bool | None = None,
                curvature_prior: bool = False) -> PolicyModel:
    """A tiny policy with fitted normalisers; ``speed_prior`` by default where the profile gives the speed, as the
    trainer builds it (``curvature_prior`` is off by default, as in the trainer's default config)."""
    torch.manual_seed(0)
    given = any(i.name == "lateral_control_params" for i in get_profile(profile).policy.inputs)
    speed_prior = given if speed_prior is None else speed_prior
    model = PolicyModel(profile, "tiny", diffusion=diffusion_config(profile), head=head, speed_prior=speed_prior,
                        curvature_prior=curvature_prior)
    fit = policy_batch(profile, 16, seed=1)
    fed_back = fit["prev_desired_curv"][:, -1, 0].numpy() if "prev_desired_curv" in fit else None
    model.fit_normalizers(fit["plan"].numpy(), fit.get("lateral_control_params"), fed_back)
    return model


# --- shared checks ---------------------------------------------------------------------------------------------
def check_parsed(spec: ModelSpec, out: torch.Tensor) -> None:
    """Output is (B, W), parses through the contract parser to finite values of the right shapes, pad is 0."""
    B = out.shape[0]
    assert out.shape == (B, spec.output_width) and out.dtype == torch.float32
    parsed = parse_outputs(spec, out.numpy())
    for head in spec.heads:
        expected = head.parsed_shape(B) if head.kind is HeadKind.MDN else (B,) + head.shape
        assert parsed[head.name].shape == expected, head.name
        assert np.isfinite(parsed[head.name]).all(), head.name
        if head.kind is HeadKind.MDN:
            assert np.isfinite(parsed[head.name + "_stds"]).all() and (parsed[head.name + "_stds"] > 0).all()
    if spec.pad_width:
        assert (out[:, spec.output_slices()["pad"]] == 0).all()


def fixed_seed_loss(model: torch.nn.Module, batch: dict) -> float:
    torch.manual_seed(1234)  # same diffusion timesteps and noise for a fair before/after comparison
    with torch.no_grad():
        return float(model.loss(batch)[0])


def overfit(model: torch.nn.Module, batch: dict, steps: int, lr: float = 3e-3) -> tuple[float, float]:
    """(loss before, loss after) ``steps`` Adam steps on one fixed batch (train mode throughout)."""
    model.train()
    before = fixed_seed_loss(model, batch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        torch.manual_seed(step)
        total, _ = model.loss(batch)
        opt.zero_grad()
        total.backward()
        opt.step()
    return before, fixed_seed_loss(model, batch)


def export_onnx(model: torch.nn.Module, spec: ModelSpec, inputs: tuple, path: Path) -> Path:
    """The product's export path (``export.onnx_export``), with its own checks of names, shapes and dtypes."""
    export_to_onnx(model, spec, inputs, path, "test/0")
    check_onnx_file(path, spec, "test/0")
    return path


def contract_inputs(spec: ModelSpec, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randint(0, 256, i.shape, dtype=torch.uint8, generator=g) if i.dtype == "uint8"
                 else torch.randn(i.shape, generator=g) for i in spec.inputs)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| relative to max(1, max |expected|)."""
    return float(np.abs(actual - expected).max() / max(1.0, np.abs(expected).max()))


def check_onnxruntime(path: Path, spec: ModelSpec, inputs: tuple, expected: np.ndarray) -> None:
    got = run_onnxruntime(path, {i.name: x.numpy() for i, x in zip(spec.inputs, inputs)})
    assert relative_error(got, expected) < 1e-4


def check_vision_export(model: VisionModel, profile: str, path: Path, seed: int = 0) -> None:
    """The vision model exported through the product's path gives torch's outputs under onnxruntime."""
    spec = get_profile(profile).vision
    inputs = contract_inputs(spec, seed=seed)
    export_onnx(model, spec, inputs, path)
    with torch.no_grad():
        expected = model(*inputs).numpy()
    check_onnxruntime(path, spec, inputs, expected)


# --- vision ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("profile", "heads"), VISION_CASES)
def test_vision_forward_follows_contract_and_is_deterministic(profile: str, heads: str) -> None:
    spec = get_profile(profile).vision
    model = make_vision(profile, heads).eval()
    batch = vision_batch(2)
    with torch.no_grad():
        out = model(batch["img"], batch["big_img"])
        again = model(batch["img"], batch["big_img"])
        hidden = model.features(batch["img"], batch["big_img"])
    check_parsed(spec, out)
    assert torch.equal(out, again)
    assert torch.equal(out[:, spec.output_slices()["hidden_state"]], hidden)
    lane_y = parse_outputs(spec, out.numpy())["lane_lines"][..., 0].mean(axis=(0, 2))
    assert np.all(np.diff(lane_y) > 0)  # physical units: fitted normalisers order the lines left to right


@pytest.mark.parametrize(("profile", "heads"), VISION_CASES)
def test_vision_loss_backward_and_overfit(profile: str, heads: str) -> None:
    model = make_vision(profile, heads)
    batch = vision_batch(4)
    total, parts = model.loss(batch)
    assert torch.isfinite(total) and set(parts) == {h.name for h in model.spec.heads} - {"hidden_state"}
    total.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    before, after = overfit(model, batch, steps=20)
    assert after < before - 0.3 * abs(before), (before, after)


@pytest.mark.parametrize(("profile", "heads"), VISION_CASES)
def test_vision_onnx_export_matches_torch(profile: str, heads: str, tmp_path: Path) -> None:
    check_vision_export(make_vision(profile, heads), profile, tmp_path / "driving_vision.onnx")


def test_vision_state_dict_carries_normalizers() -> None:
    assert not VisionModel("op-0.10.1", "tiny").normalizers_fitted
    model = make_vision("op-0.10.1", "diffusion").eval()
    assert model.normalizers_fitted
    state = model.state_dict()
    assert {"trajectory_heads.lane_lines.normalizer.mean", "trajectory_heads.lead.normalizer.std",
            "mdn_heads.pose.normalizer.mean", "trajectory_heads.lane_lines.normalizer.fitted"} <= set(state)
    fresh = VisionModel("op-0.10.1", "tiny", diffusion=diffusion_config("op-0.10.1"))
    fresh.load_state_dict(state)
    batch = vision_batch(1)
    with torch.no_grad():  # the export noise is regenerated from the seed: same outputs
        assert torch.equal(fresh.eval()(batch["img"], batch["big_img"]), model(batch["img"], batch["big_img"]))
    rebuilt = VisionModel(**model.model_args)
    rebuilt.load_state_dict(state)
    assert rebuilt.model_args == model.model_args
    more_samples = VisionModel("op-0.10.1", "tiny", diffusion=DiffusionConfig(steps=3, export_samples=16))
    more_samples.load_state_dict(state)  # a checkpoint exports with other sampling settings
    assert more_samples.trajectory_heads["lead"].export_noise.shape == (16, math.prod(LEAD_SHAPE))


def test_vision_sizes_flags_and_counts() -> None:
    separate = VisionModel("op-0.10.1", "tiny")
    shared = VisionModel("op-0.10.1", "tiny", shared_backbone=True)
    assert count_parameters(shared) < count_parameters(separate) < 2.0e6
    assert count_parameters(VisionModel("op-0.10.1", "tiny", heads="mdn")) < count_parameters(separate)
    img = torch.zeros(IMG_SHAPE, dtype=torch.uint8)
    assert count_flops(shared.eval(), (img, img)) == count_flops(separate.eval(), (img, img)) > 0
    wider = VisionModel("op-0.10.1", {"preset": "tiny", "camera_dim": 128})
    assert wider.size.camera_dim == 128 and count_parameters(wider) < count_parameters(separate)
    with pytest.raises(ConfigError, match="camera_dimm"):
        VisionModel("op-0.10.1", {"camera_dimm": 1})
    with pytest.raises(ConfigError, match="model.heads='gmm'"):
        VisionModel("op-0.10.1", heads="gmm")
    with pytest.raises(ConfigError, match="model.size='huge'"):
        VisionModel("op-0.10.1", "huge")


def test_coord_channels_tell_the_stem_where_each_pixel_is_and_export(tmp_path: Path) -> None:
    """With coord_channels the stem sees two more channels, each pixel's column and row (-1..1), not saved in the
    state_dict; the graph still exports and matches torch."""
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", {"preset": "tiny", "coord_channels": True}, "regression").eval()
    coords = model.backbones[0].coords
    assert coords.shape == (1, 2) + IMG_SHAPE[2:]
    assert float(coords[0, 0, 0, 0]) == -1.0 and float(coords[0, 0, 0, -1]) == 1.0  # columns, left to right
    assert float(coords[0, 1, 0, 0]) == -1.0 and float(coords[0, 1, -1, 0]) == 1.0  # rows, top to bottom
    assert model.backbones[0].features[0][0].in_channels == IMG_SHAPE[1] + 2
    assert not any("coords" in k for k in model.state_dict())
    assert VisionModel(**model.model_args).backbones[0].coords is not None  # a checkpoint rebuilds with them
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.trainer import make_models

    for flag in (False, True):  # vision.coord_channels reaches the model
        settings = settings_from_cfg(load_config([f"vision.coord_channels={str(flag).lower()}"]))
        built = make_models(settings, Runtime(torch.device("cpu"), "fp32")).vision
        assert built.size.coord_channels is flag and (built.backbones[0].coords is not None) is flag
    plain = VisionModel("op-0.10.1", "tiny", "regression")
    assert count_parameters(model) > count_parameters(plain)
    check_vision_export(model, "op-0.10.1", tmp_path / "driving_vision.onnx", seed=1)


def test_lead_hypotheses_select_offsets_by_closeness() -> None:
    """op-0.10.0 diffusion lead: hypotheses = offsets 0 and 4 s; the 2 s slot picks the closer one."""
    car_a, car_b = torch.full((6, 4), 10.0), torch.full((6, 4), 50.0)
    mu = torch.stack([car_a, car_b + 1.0, car_b])[None]  # (1, 3, 6, 4): offset 2 s is nearly car b
    hyp_mu, _, logits = lead_hypotheses(mu, torch.zeros_like(mu))
    torch.testing.assert_close(hyp_mu[0], torch.stack([car_a, car_b]))
    assert logits.argmax(dim=1).tolist() == [[0, 1, 1]]


# --- policy ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("profile", PROFILES)
def test_policy_forward_follows_contract_and_is_deterministic(profile: str) -> None:
    spec = get_profile(profile).policy
    model = make_policy(profile).eval()
    inputs = model.inputs_from_batch(policy_batch(profile, 2))
    with torch.no_grad():
        out, again = model(*inputs), model(*inputs)
        consensus_mu, _, _ = model.plan_head.export_stats(model.encode(*inputs))  # the mean head
        consensus_mu = consensus_mu + model._prior_of(inputs)  # op-0.10.0: + constant velocity at the given speed
    check_parsed(spec, out)
    assert torch.equal(out, again)
    parsed = parse_outputs(spec, out.numpy())
    np.testing.assert_allclose(parsed["plan"].reshape(2, IDX_N, PLAN_WIDTH), consensus_mu.numpy(), rtol=1e-6)
    if spec.head("plan").is_multi_hypothesis:  # modeld selects the consensus hypothesis
        head = spec.head("plan")
        raw = out.numpy()[:, spec.output_slices()["plan"]].reshape(2, head.hypotheses, -1)
        assert raw[:, :, -1].argmax(axis=1).tolist() == [0, 0]  # the consensus hypothesis has the largest logit


@pytest.mark.parametrize("profile", PROFILES)
def test_policy_loss_backward_and_overfit(profile: str) -> None:
    model = make_policy(profile)
    batch = policy_batch(profile, 8)
    total, parts = model.loss(batch)
    assert torch.isfinite(total)
    assert set(parts) == {h.name for h in model.spec.heads}
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    before, after = overfit(model, batch, steps=25)
    assert after < before - 0.3 * abs(before), (before, after)


@pytest.mark.parametrize("profile", PROFILES)
def test_policy_onnx_export_matches_torch(profile: str, tmp_path: Path) -> None:
    spec = get_profile(profile).policy
    model = make_policy(profile)
    inputs = contract_inputs(spec)
    path = export_onnx(model, spec, inputs, tmp_path / "driving_policy.onnx")
    with torch.no_grad():
        expected = model(*inputs).numpy()
    check_onnxruntime(path, spec, inputs, expected)


@pytest.mark.parametrize("profile", PROFILES)
def test_policy_takes_exactly_the_profile_inputs(profile: str) -> None:
    spec = get_profile(profile).policy
    model = make_policy(profile).eval()
    assert model.input_names == tuple(i.name for i in spec.inputs)
    batch = policy_batch(profile, 2)
    inputs = model.inputs_from_batch(batch)
    assert len(inputs) == len(spec.inputs)
    with pytest.raises(TypeError, match="takes"):
        model(*inputs, batch["plan"])
    with pytest.raises(ValueError, match="wrong shapes"):
        model(*inputs[:-1], inputs[-1][:, :, :10])
    poisoned = dict(batch, plan=batch["plan"] + 100.0, desire_state=torch.ones(2, 8))
    with torch.no_grad():
        assert torch.equal(model(*model.inputs_from_batch(poisoned)), model(*inputs))
    if "prev_desired_curv" in batch:  # the fed-back history counts with the curvature prior only
        fed_back = dict(batch, prev_desired_curv=torch.full_like(batch["prev_desired_curv"], 0.05))
        for prior in (True, False):
            model = make_policy(profile, curvature_prior=prior).eval()
            with torch.no_grad():
                same = torch.equal(model(*model.inputs_from_batch(fed_back)), model(*model.inputs_from_batch(batch)))
            assert same is not prior


def test_policy_sample_is_stochastic_and_reproducible() -> None:
    model = make_policy("op-0.10.1").eval()
    inputs = model.inputs_from_batch(policy_batch("op-0.10.1", 2))
    a = model.sample(*inputs, n_samples=3, generator=torch.Generator().manual_seed(0))
    b = model.sample(*inputs, n_samples=3, generator=torch.Generator().manual_seed(0))
    c = model.sample(*inputs, n_samples=3, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 3, IDX_N, PLAN_WIDTH) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_policy_config_errors_and_counts() -> None:
    with pytest.raises(ConfigError, match="export_samples=4"):
        PolicyModel("op-0.10.0", "tiny", diffusion={"export_samples": 4})
    with pytest.raises(ConfigError, match="diffusion.steps=0"):
        PolicyModel("op-0.10.1", "tiny", diffusion={"steps": 0})
    assert not PolicyModel("op-0.10.0", "tiny").normalizers_fitted and make_policy("op-0.10.0").normalizers_fitted
    model = PolicyModel("op-0.10.1", {"preset": "base", "layers": 1}).eval()
    assert model.size.d_model == 256 and len(model.encoder.blocks) == 1
    rebuilt = PolicyModel(**model.model_args)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.model_args == model.model_args and rebuilt.size == model.size
    assert count_flops(model, contract_inputs(model.spec)) > 0


@pytest.mark.parametrize(("speed_mps", "radius_m"), [(10.0, 50.0), (25.0, -400.0), (3.0, 20.0)])
def test_desired_curvature_target_of_a_circle_is_one_over_radius(speed_mps: float, radius_m: float) -> None:
    plan = turning_plan(torch.tensor([speed_mps]), torch.tensor([speed_mps / radius_m]))
    kappa = desired_curvature_target(plan, torch.tensor([[speed_mps, 0.2]]))
    assert kappa.shape == (1, 1)
    assert float(kappa) == pytest.approx(1.0 / radius_m, rel=1e-4)  # right turns (radius > 0) are positive
    straight = desired_curvature_target(turning_plan(torch.tensor([speed_mps]), torch.zeros(1)),
                                        torch.tensor([[speed_mps, 0.2]]))
    assert math.isclose(float(straight), 0.0, abs_tol=1e-6)


@pytest.mark.parametrize("head", ["mdn", "regression"])
def test_policy_heads_other_than_diffusion_train_and_export(head: str, tmp_path: Path) -> None:
    """The plan heads compared with diffusion (docs/models.md): contract output, learning, ONNX parity; op-0.10.0's
    hypotheses come from diffusion samples, so the other heads refuse that profile."""
    spec = get_profile("op-0.10.1").policy
    model = make_policy("op-0.10.1", head)
    batch = policy_batch("op-0.10.1", 8)
    before, after = overfit(model, batch, steps=25)
    assert after < before - 0.3 * abs(before), (before, after)
    model.eval()
    inputs = contract_inputs(spec)
    with torch.no_grad():
        expected = model(*inputs).numpy()
    check_parsed(spec, torch.from_numpy(expected))
    check_onnxruntime(export_onnx(model, spec, inputs, tmp_path / "driving_policy.onnx"), spec, inputs, expected)
    with pytest.raises(ConfigError, match="policy.head"):
        PolicyModel("op-0.10.0", "tiny", head=head)
    with pytest.raises(ConfigError, match="policy.head"):
        PolicyModel("op-0.10.1", "tiny", head="transformer")


def test_vision_backbone_keeps_no_running_statistics() -> None:
    """GroupNorm: the features of a frame are the same in training and eval mode and do not depend on the rest of
    the batch, whichever camera goes through a shared backbone."""
    model = make_vision("op-0.10.1", "diffusion", shared_backbone=True)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    batch = vision_batch(3)
    with torch.no_grad():
        model.train()
        train_features = model.features(batch["img"], batch["big_img"])
        model.eval()
        eval_features = model.features(batch["img"], batch["big_img"])
        alone = model.features(batch["img"][:1], batch["big_img"][:1])
    torch.testing.assert_close(train_features, eval_features)
    torch.testing.assert_close(alone, eval_features[:1], rtol=1e-4, atol=1e-5)


def test_given_the_speed_the_plan_is_constant_velocity_plus_what_the_head_predicts() -> None:
    """op-0.10.0 feeds the car's speed: with speed_prior the head learns the plan's difference from constant
    velocity at that speed, so even untrained the plan moves at the given speed (without it, at the mean's)."""
    batch = policy_batch("op-0.10.0", 8, seed=2)
    speed = batch["lateral_control_params"][:, 0]
    spec = get_profile("op-0.10.0").policy
    errors = {}
    for prior in (True, False):
        model = make_policy("op-0.10.0", speed_prior=prior).eval()
        inputs = model.inputs_from_batch(batch)
        with torch.no_grad():
            plan = parse_outputs(spec, model(*inputs).numpy())["plan"].reshape(8, IDX_N, PLAN_WIDTH)  # the consensus
            mu = model.plan_head.export_stats(model.encode(*inputs))[0]
        expected = mu + (speed[:, None, None] * torch.from_numpy(SPEED_PRIOR) if prior else 0.0)
        np.testing.assert_allclose(plan, expected.numpy(), rtol=1e-5, atol=1e-4)
        errors[prior] = np.abs(plan[:, 0, Plan.VELOCITY.start] - speed.numpy()).max()
    assert errors[True] < 0.05 < 2.0 < errors[False]
    with pytest.raises(ConfigError, match="speed_prior=true: op-0.10.1's policy is not given the car's speed"):
        make_policy("op-0.10.1", speed_prior=True)


def test_the_long_action_part_is_the_error_of_the_acceleration_the_controls_take_from_the_plans_mean() -> None:
    """long_action_weight adds a loss part: the controls' acceleration (contract.actions.accel_action) from the plan
    head's mean plus the speed prior, against the label's, squared in units of LONG_ACTION_SCALE_MPS2, weighed into
    the total; it trains the plan head's mean (through it the encoder), not the samples' denoiser, and a weight
    below 0 is refused."""
    batch = policy_batch("op-0.10.0", 8, seed=3)
    batch["plan"][:, :, Plan.VELOCITY.start] += 0.8 * torch.from_numpy(T_IDXS).float()  # the label speeds up
    model = make_policy("op-0.10.0")
    plain = model.loss(batch)[1]
    assert "long_action" not in plain
    weighted = PolicyModel(**{**model.model_args, "long_action_weight": 3.0})
    weighted.load_state_dict(model.state_dict())
    torch.manual_seed(5)
    total, parts = weighted.loss(batch)
    inputs = weighted.inputs_from_batch(batch)
    with torch.no_grad():
        mean = weighted.plan_head.mean(weighted.encode(*inputs)) + weighted._prior_of(inputs)
    expected = ((accel_action(mean) - accel_action(batch["plan"])) / LONG_ACTION_SCALE_MPS2).square().mean()
    assert parts["long_action"] == pytest.approx(float(expected), rel=1e-4)
    assert parts["long_action"] > 1.0  # an untrained mean holds the speed; the label gains 0.8 m/s^2
    assert float(total.detach()) == pytest.approx(sum(parts.values()) + 2.0 * parts["long_action"], rel=1e-4)
    weighted.zero_grad()
    error = accel_action(weighted.plan_head.mean(weighted.encode(*inputs)) + weighted._prior_of(inputs))
    error.square().mean().backward()  # what the part differentiates
    grads = {name: p.grad for name, p in weighted.named_parameters()}
    assert grads["plan_head.mean_head.2.weight"].abs().sum() > 0
    assert all(g is None for n, g in grads.items() if n.startswith(("plan_head.denoiser.", "desire_head.")))
    with pytest.raises(ConfigError, match="long_action_weight=-1"):
        PolicyModel("op-0.10.0", "tiny", long_action_weight=-1.0)


def test_the_curvature_prior_is_the_fed_back_curvature_and_its_arc() -> None:
    """With curvature_prior (op-0.10.0) desired_curvature is the newest fed-back curvature plus the head's change,
    and the plan's prior is the arc of that curvature at the given speed: a constant-yaw-rate drive."""
    batch = policy_batch("op-0.10.0", 8, seed=3)
    speed = batch["lateral_control_params"][:, 0]
    yaw_rate = torch.linspace(-0.1, 0.1, 8)
    yaw_rate[3] = 5e-6  # the small-angle series
    curvature = yaw_rate / speed
    batch["prev_desired_curv"][:, -1, 0] = curvature
    batch["prev_desired_curv"][:, :-1, 0] = 0.3  # older entries do not set the prior
    model = make_policy("op-0.10.0", curvature_prior=True).eval()
    arc = turning_plan(speed.double(), yaw_rate.double())  # in float64: 1 - cos(w t) of a small w t
    np.testing.assert_allclose(model.prior(speed, curvature).numpy(), arc.numpy(), rtol=1e-4, atol=1e-4)
    spec = get_profile("op-0.10.0").policy
    inputs = model.inputs_from_batch(batch)
    with torch.no_grad():
        parsed = parse_outputs(spec, model(*inputs).numpy())
        cond = model.encode(*inputs)
        head_mu = model.curvature_head(cond)[0][:, 0]
        plan_mu = model.plan_head.export_stats(cond)[0]
    np.testing.assert_allclose(parsed["desired_curvature"][:, 0], (head_mu + curvature).numpy(), rtol=1e-5,
                               atol=1e-6)
    expected_plan = plan_mu + arc
    np.testing.assert_allclose(parsed["plan"].reshape(8, IDX_N, PLAN_WIDTH), expected_plan.numpy(), rtol=1e-4,
                               atol=1e-3)
    with pytest.raises(ConfigError, match="curvature_prior=true: op-0.10.1's policy is not fed its own"):
        PolicyModel("op-0.10.1", "tiny", curvature_prior=True)
    with pytest.raises(ConfigError, match="needs policy.speed_prior=true"):
        PolicyModel("op-0.10.0", "tiny", curvature_prior=True, speed_prior=False)


def test_training_shifts_the_fed_back_curvature_in_half_the_samples_only() -> None:
    """Trained on the labels' curvature history, the model must also learn to correct a history that is off (its
    own, fed back): in training a random half of the samples get the history shifted by one offset each; the
    exported graph (eval) sees it as it is."""
    model = make_policy("op-0.10.0", curvature_prior=True)
    batch = policy_batch("op-0.10.0", 400, seed=4)
    batch["prev_desired_curv"][:] = 0.002
    k = model.input_names.index("prev_desired_curv")
    torch.manual_seed(5)
    shifted = model._perturbed(model.inputs_from_batch(batch))[k] - 0.002  # (400, 25, 1)
    assert torch.allclose(shifted, shifted[:, :1].expand_as(shifted), atol=1e-7)  # one offset per sample
    moved = shifted[:, 0, 0].abs() > 0
    assert 0.35 < moved.float().mean() < 0.65
    speed = batch["lateral_control_params"][:, 0].clamp_min(5.0)
    accel = shifted[moved, 0, 0] * speed[moved] ** 2  # as lateral acceleration: N(0, CURVATURE_NOISE_MPS2)
    assert 0.35 < float(accel.std()) < 0.65
    assert torch.equal(model.eval()._perturbed(model.inputs_from_batch(batch))[k], batch["prev_desired_curv"])


def test_the_exported_plan_mean_is_the_mean_head_and_the_std_its_samples_spread() -> None:
    model = make_policy("op-0.10.1").eval()
    inputs = model.inputs_from_batch(policy_batch("op-0.10.1", 2))
    head = model.plan_head
    with torch.no_grad():
        cond = model.encode(*inputs)
        mu, log_std, samples = head.export_stats(cond)
        mean = head.normalizer.denormalize(head.mean_head(cond).reshape(2, IDX_N, PLAN_WIDTH))
        rms = (samples - head.mean_head(cond).reshape(2, 1, IDX_N, PLAN_WIDTH)).square().mean(dim=1).sqrt()
        head.std_scale.fill_(3.0)
        _, scaled_log_std, _ = head.export_stats(cond)
    torch.testing.assert_close(mu, mean)
    torch.testing.assert_close(log_std, torch.log(rms + head.config.std_floor) + head.normalizer.log_std())
    torch.testing.assert_close(scaled_log_std - log_std, torch.full_like(log_std, math.log(3.0)))


def test_vision_loss_weights_scale_their_part_and_unknown_parts_are_refused():
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", "tiny", "regression", shared_backbone=True)
    batch = vision_batch(4, seed=3)
    model.fit_normalizers({k: v.numpy() for k, v in vision_batch(16, seed=1).items()})
    model.eval()
    total, parts = model.loss(batch)
    model.loss_weights = {"pose": 5.0}
    weighted, _ = model.loss(batch)
    assert float((weighted - total).detach()) == pytest.approx(4.0 * parts["pose"], rel=1e-4, abs=1e-5)
    with pytest.raises(ConfigError, match="unknown part"):
        VisionModel("op-0.10.1", "tiny", "regression", loss_weights={"speed": 2.0})


@pytest.mark.parametrize("heads", ["diffusion", "regression"])
def test_the_lane_centre_part_measures_where_the_car_is_in_its_lane_and_is_off_unless_weighted(heads):
    """lane_centre: the middle of the left and right lines of the lane_lines mean against the labels' middle, in
    units of LANE_CENTRE_SCALE_M: zero where the labels are the model's own lines, one where both lines move by
    that scale, unchanged where the lane only widens; not computed (weight 0) unless loss_weights names it."""
    torch.manual_seed(0)
    batch = vision_batch(4, seed=3)
    model = VisionModel("op-0.10.1", "tiny", heads, shared_backbone=True)
    model.fit_normalizers({k: v.numpy() for k, v in vision_batch(16, seed=1).items()})
    model.eval()
    assert "lane_centre" not in model.loss(batch)[1] and model.part_weight("lane_centre") == 0.0
    model.loss_weights = {"lane_centre": 3.0}
    with torch.no_grad():
        own = model.trajectory_heads["lane_lines"].mean(model.features(batch["img"], batch["big_img"]))
    parts = {}
    for name, shift in (("own", (0.0, 0.0)), ("moved", (LANE_CENTRE_SCALE_M, LANE_CENTRE_SCALE_M)),
                        ("wider", (-LANE_CENTRE_SCALE_M, LANE_CENTRE_SCALE_M))):
        lines = own.clone()
        lines[:, LaneLine.LEFT, :, 0] += shift[0]
        lines[:, LaneLine.RIGHT, :, 0] += shift[1]
        total, parts[name] = model.loss(dict(batch, lane_lines=lines))
        others = sum(model.part_weight(k) * v for k, v in parts[name].items() if k != "lane_centre")
        assert float(total.detach()) == pytest.approx(others + 3.0 * parts[name]["lane_centre"], rel=1e-4, abs=1e-4)
    assert parts["own"]["lane_centre"] == pytest.approx(0.0, abs=1e-6)
    assert parts["moved"]["lane_centre"] == pytest.approx(1.0, rel=1e-4)
    assert parts["wider"]["lane_centre"] == pytest.approx(0.0, abs=1e-6)
    assert parts["wider"]["lane_lines"] > parts["own"]["lane_lines"]  # the lines themselves did move


def test_near_line_weight_makes_an_error_near_the_car_count_more_than_one_far_ahead():
    """The lane lines' loss weight is near_line_weight at the car and fades to 1 ahead: the same error costs that many
    times more, relative to one 192 m ahead, than with every point alike; below 1 is refused."""
    batch = vision_batch(4, seed=3)
    stats = {k: v.numpy() for k, v in vision_batch(16, seed=1).items()}
    ratios = {}
    for weight in (1.0, 5.0):
        torch.manual_seed(0)  # the same parameters: the weight is no parameter
        model = VisionModel("op-0.10.1", "tiny", "regression", shared_backbone=True, near_line_weight=weight)
        model.fit_normalizers(stats)
        model.eval()
        loss = {}
        for where, index in (("none", None), ("near", 0), ("far", -1)):
            lines = batch["lane_lines"].clone()
            if index is not None:
                lines[:, :, index, 0] += 1.0  # every line 1 m off, at the car or 192 m ahead
            loss[where] = model.loss(dict(batch, lane_lines=lines))[1]["lane_lines"]
        ratios[weight] = (loss["near"] - loss["none"]) / (loss["far"] - loss["none"])
        weights = model.line_distance_weight[:, 0]
        assert float(weights[0]) == pytest.approx(weight) and float(weights[-1]) == pytest.approx(1.0, abs=1e-4)
        assert bool((weights[1:] <= weights[:-1]).all()) and model.model_args["near_line_weight"] == weight
    assert ratios[5.0] == pytest.approx(5.0 * ratios[1.0], rel=1e-3)
    with pytest.raises(ConfigError, match="near_line_weight"):
        VisionModel("op-0.10.1", "tiny", "regression", near_line_weight=0.5)
    from sunnypilot_training.training.config import load_config, settings_from_cfg

    with pytest.raises(ConfigError, match="vision.near_line_weight"):
        settings_from_cfg(load_config(["vision.near_line_weight=0.5"]))


def test_vision_parts_that_look_ahead_learn_only_where_the_episode_holds_the_future():
    torch.manual_seed(0)
    model = VisionModel("op-0.10.1", "tiny", "regression", shared_backbone=True)
    model.fit_normalizers({k: v.numpy() for k, v in vision_batch(16, seed=1).items()})
    model.eval()
    batch = vision_batch(4, seed=3)
    batch["future"] = torch.tensor([True, True, False, False])
    _, parts = model.loss(batch)
    changed = dict(batch)
    for key in ("meta", "lead", "lead_prob", "desire_pred"):  # what samples 2, 3 say of the future counts for nothing
        changed[key] = batch[key].clone()
        changed[key][2:] = torch.rand_like(batch[key][2:]) * 50.0
    changed["pose"] = batch["pose"].clone()
    changed["pose"][2:] += 10.0  # while their pose (no future needed) does count
    _, again = model.loss(changed)
    for key in ("meta", "lead", "lead_prob", "desire_pred", "lane_lines", "road_edges"):
        assert again[key] == pytest.approx(parts[key], rel=1e-5), key
    assert again["pose"] > parts["pose"] + 1.0
    first_two = {k: v[:2] for k, v in batch.items()}
    _, alone = model.loss(first_two)
    for key in ("meta", "lead", "lead_prob", "desire_pred"):
        assert parts[key] == pytest.approx(alone[key], rel=1e-5), key
    none_ahead = {**batch, "future": torch.zeros(4, dtype=torch.bool)}
    total, parts = model.loss(none_ahead)
    assert torch.isfinite(total) and parts["meta"] == 0.0 and parts["lead"] == 0.0


def test_policy_feature_dropout_and_noise_touch_training_only() -> None:
    """features_buffer dropout/noise perturb what the loss sees in train mode; eval (the exported graph) and a
    model without them agree exactly; the settings survive model_args."""
    plain = make_policy("op-0.10.1")
    noisy = PolicyModel("op-0.10.1", "tiny", diffusion=diffusion_config("op-0.10.1"), feature_dropout=0.5,
                        feature_noise=1.0)
    noisy.load_state_dict(plain.state_dict())
    assert PolicyModel(**noisy.model_args).feature_noise == 1.0
    batch = policy_batch("op-0.10.1", 4)
    inputs = noisy.inputs_from_batch(batch)
    k = noisy.input_names.index("features_buffer")
    noisy.train()
    perturbed = noisy._perturbed(inputs)
    assert not torch.equal(perturbed[k], inputs[k])
    assert all(torch.equal(perturbed[i], inputs[i]) for i in range(len(inputs)) if i != k)
    assert noisy._perturbed(inputs)[k].sub(inputs[k]).std() > 0.5  # the noise is there, at its scale
    plain.train()
    assert all(torch.equal(a, b) for a, b in zip(plain._perturbed(inputs), inputs))
    noisy.eval()
    plain.eval()
    with torch.no_grad():
        assert torch.equal(noisy(*inputs), plain(*inputs))


def test_op_0_10_0_plan_hypotheses_are_clusters_of_the_samples_weighted_by_their_share() -> None:
    """Eight sampled paths, six along one future and two along another: the hypotheses at the rarer future carry
    a tenth of the probability (0.4 x 2/8), those at the common one 0.3, and the consensus (the mean head, 0.6)
    stays the hypothesis modeld drives."""
    model = make_policy("op-0.10.0").eval()
    norm = model.plan_head.normalizer
    gen = torch.Generator().manual_seed(3)
    base = torch.zeros(1, 33, 15)
    base[..., 0] = torch.linspace(0.0, 200.0, 33)  # x: straight ahead
    swerve = base.clone()
    swerve[..., 1] = torch.linspace(0.0, 3.5, 33)  # y: a lane to the right
    paths = torch.cat([base.expand(6, -1, -1), swerve.expand(2, -1, -1)])[None]  # (1, 8, 33, 15)
    samples = norm.normalize(paths + 0.05 * torch.randn(paths.shape, generator=gen))
    mu, log_std, logits = model._plan_hypotheses(base, torch.zeros(1, 33, 15), samples)
    assert mu.shape == (1, 5, 33, 15) and log_std.shape == (1, 5, 33, 15) and logits.shape == (1, 5, 1)
    probs = logits[0, :, 0].exp()
    assert probs[0] == pytest.approx(0.6, abs=1e-6) and probs.sum() == pytest.approx(1.0, abs=1e-4)
    end_y = mu[0, 1:, -1, 1]  # lateral position at 10 s of each cluster
    rare = end_y > 1.75  # four clusters for two futures: each future gets at least one, none lies between
    assert 1 <= int(rare.sum()) <= 3
    assert ((end_y[rare] - 3.5).abs() < 0.2).all() and (end_y[~rare].abs() < 0.2).all()
    assert probs[1:][rare].sum().item() == pytest.approx(0.1, abs=0.01)
    assert probs[1:][~rare].sum().item() == pytest.approx(0.3, abs=0.01)


def test_soft_clusters_do_not_flip_on_a_near_tie() -> None:
    """The exported graph has no argmax: moving a point across the boundary between two clusters changes the
    responsibilities continuously, so runtimes that differ in the last bits agree."""
    points = torch.tensor([[[0.0, 0.0], [0.1, 0.0], [4.0, 0.0], [4.1, 0.0], [2.05, 0.0]]])
    resp = cluster_samples(points, torch.zeros(1, 2), k=2)
    assert torch.allclose(resp.sum(dim=2), torch.ones(1, 5))
    nudged = points.clone()
    nudged[0, 4, 0] += 1e-4
    assert (cluster_samples(nudged, torch.zeros(1, 2), k=2) - resp).abs().max() < 0.01
    assert resp[0, 0].argmax() != resp[0, 2].argmax() and resp[0, 0].max() > 0.99


def test_validation_feeds_a_curvature_prior_model_the_history_shifted_as_in_training() -> None:
    """Validation (epoch selection, std calibration) must see the fed-back history as training does - half of it
    shifted - or it would favour a model that copies the labels' history; the draw is fixed, so epochs compare."""
    batch = policy_batch("op-0.10.0", 64, seed=6)
    batch["prev_desired_curv"][:] = 0.001
    samples = [{k: v[i] for k, v in batch.items()} for i in range(64)]
    model = make_policy("op-0.10.0", curvature_prior=True)
    parsed, _ = predict_policy(model, samples, torch.device("cpu"))
    again, _ = predict_policy(model, samples, torch.device("cpu"))
    with torch.no_grad():
        as_is = parse_outputs(model.spec, model(*model.inputs_from_batch(batch)).numpy())
    changed = np.abs(parsed["desired_curvature"][:, 0] - as_is["desired_curvature"][:, 0]) > 1e-7
    assert 0.3 < changed.mean() < 0.7
    np.testing.assert_array_equal(parsed["desired_curvature"], again["desired_curvature"])
    plain = make_policy("op-0.10.0", curvature_prior=False)
    parsed, _ = predict_policy(plain, samples, torch.device("cpu"))
    with torch.no_grad():
        as_is = parse_outputs(plain.spec, plain(*plain.inputs_from_batch(batch)).numpy())
    np.testing.assert_allclose(parsed["desired_curvature"], as_is["desired_curvature"], rtol=1e-5, atol=1e-7)


def test_the_lane_channel_reads_the_lane_centre_into_hidden_state_and_exports(tmp_path: Path) -> None:
    """lane_channel: a linear readout of the road camera's features says the lane centre at 0, 10 and 30 m; its loss
    part is the robust error in units of 0.3 m against the labels' centre there, hidden_state's values just before
    the speed channel carry the reading, a checkpoint rebuilds it, the config key reaches the model, validation
    reports it, and the graph exports."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.models.vision import LANE_CHANNEL_AT_M, lane_channel_index, lane_reading_m
    from sunnypilot_training.training.trainer import make_models
    from sunnypilot_training.training.validation import vision_metrics

    batch = vision_batch(4, seed=2)
    model = make_vision("op-0.10.0", "regression", batch, lane_channel=True, motion_volume=True,
                        speed_channel=True).eval()
    assert VisionModel(**model.model_args).lane_position is not None
    assert make_vision("op-0.10.0", "regression", batch).lane_position is None
    lines = batch["lane_lines"].float()
    # the labelled centre at 0 m is the middle of the left and right lines' first points; at 10 m interpolated
    at0 = 0.5 * (lines[:, LaneLine.LEFT, 0, 0] + lines[:, LaneLine.RIGHT, 0, 0])
    targets = model.lane_targets(lines)
    assert targets.shape == (4, len(LANE_CHANNEL_AT_M))
    assert torch.allclose(targets[:, 0], at0, atol=1e-6)
    centre = 0.5 * (lines[:, LaneLine.LEFT, :, 0] + lines[:, LaneLine.RIGHT, :, 0]).numpy()
    for j, at_m in enumerate(LANE_CHANNEL_AT_M):
        expected = np.array([np.interp(at_m, X_IDXS, row) for row in centre])
        assert np.allclose(targets[:, j].numpy(), expected, atol=1e-5)
    assert LANE_CHANNEL_AT_M == (0.0, 10.0, 30.0)
    with torch.no_grad():
        hidden, (speed, _), lane, _ = model._features(batch["img"], batch["big_img"])
    assert torch.allclose(hidden[:, -4:-1], lane, atol=1e-6)  # the readings, before the speed channel
    assert torch.allclose(lane * LANE_CENTRE_SCALE_M, lane_reading_m(hidden, lane_channel_index(True)), atol=1e-6)
    assert torch.allclose(hidden[:, -1], speed / 10.0, atol=1e-6)
    # the part: where the readout says exactly the labels it is 0; where it says 0.3 m more, 1 (units of 0.3 m)
    with torch.no_grad():
        model.lane_position.weight.zero_()
        model.lane_position.bias.zero_()
        for shift, expected in ((0.0, 0.0), (LANE_CENTRE_SCALE_M, 1.0)):
            moved = dict(batch)
            moved["lane_lines"] = batch["lane_lines"].clone()
            moved["lane_lines"][:, :, :, 0] = shift  # every line at y = shift: the centre is shift everywhere
            assert model.loss(moved)[1]["lane_position"] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    metrics = vision_metrics(model, [{k: v[i] for k, v in batch.items()} for i in range(4)],
                             torch.device("cpu"))
    true0 = np.abs(at0.numpy()).mean()
    assert metrics["lane_position_err_0m"] == pytest.approx(true0, rel=1e-4)  # the zeroed readout says 0
    assert metrics["lane_position_err_0m_centred"] == pytest.approx(true0, rel=1e-4)
    for flag in (False, True):  # vision.lane_channel reaches the model
        settings = settings_from_cfg(load_config([f"vision.lane_channel={str(flag).lower()}"]))
        assert (make_models(settings, Runtime(torch.device("cpu"), "fp32")).vision.lane_position is not None) is flag
    check_vision_export(model, "op-0.10.0", tmp_path / "driving_vision.onnx", seed=1)


def test_validation_says_how_much_of_the_bend_the_lane_readings_hold() -> None:
    """The bend the lane channel's readings say (the quadratic through 0 / 10 / 30 m) against the labelled one:
    the mean error against saying straight, and on bends the share of the curvature read (half the bend read: 0.5)."""
    from sunnypilot_training.training.models.vision import LANE_CHANNEL_AT_M, bend_curvature
    from sunnypilot_training.training.validation import bend_metrics

    xs = torch.tensor(LANE_CHANNEL_AT_M)
    k = float(bend_curvature((60.0 - torch.sqrt(60.0 ** 2 - xs * xs))[None])[0])
    assert k == pytest.approx(1.0 / 60.0, rel=0.15)  # the quadratic reads a tight circle ~10 % high
    bent = np.array([[0.0, 10.0 ** 2 / 200.0, 30.0 ** 2 / 200.0]])  # y = x^2 / (2 R), R = 100 m: k = 0.01 1/m
    true = np.concatenate([bent, -bent, np.zeros((1, 3))])  # a bend right, one left, a straight
    metrics = bend_metrics(0.5 * true, true)
    assert metrics["lane_bend_read_share"] == pytest.approx(0.5, rel=1e-5)
    assert metrics["lane_bend_err_per_m"] == pytest.approx(2 * 0.005 / 3, rel=1e-5)
    assert metrics["lane_bend_err_per_m_straight"] == pytest.approx(2 * 0.01 / 3, rel=1e-5)
    assert "lane_bend_read_share" not in bend_metrics(np.zeros((1, 3)), np.zeros((1, 3)))  # no bend, no share


def test_the_fused_lane_readout_reads_the_fused_features_and_exports(tmp_path: Path) -> None:
    """vision.lane_readout=fused: the lane channel's readout is an MLP on the fused features (both cameras and the
    motion branch), not a linear map of the road camera's; hidden_state carries its reading at the same place, the
    readout sees the wide camera (the road one alone does not decide it), a checkpoint rebuilds it, the config key
    reaches the model (fused by default; a checkpoint without the key rebuilds the linear one), a bad value is
    refused, and the graph exports."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.models.vision import lane_channel_index, lane_reading_m
    from sunnypilot_training.training.trainer import make_models

    batch = vision_batch(4, seed=3)
    model = make_vision("op-0.10.0", "regression", batch, lane_channel=True, lane_readout="fused",
                        motion_volume=True).eval()
    assert isinstance(model.lane_position, torch.nn.Sequential)
    assert model.lane_position[0].in_features == 512
    assert isinstance(make_vision("op-0.10.0", "regression", batch, lane_channel=True).lane_position, torch.nn.Linear)
    assert VisionModel(**model.model_args).lane_readout == "fused"
    with torch.no_grad():
        hidden, _, lane, _ = model._features(batch["img"], batch["big_img"])
        assert torch.allclose(lane * LANE_CENTRE_SCALE_M, lane_reading_m(hidden, lane_channel_index(False)),
                              atol=1e-6)
        other_wide = torch.flip(batch["big_img"], dims=[0])
        _, _, lane_other, _ = model._features(batch["img"], other_wide)
    assert not torch.allclose(lane, lane_other, atol=1e-4)  # the wide camera reaches the reading
    assert model.loss(batch)[1]["lane_position"] > 0.0
    for given, expected in (([], "fused"), (["vision.lane_readout=road"], "road")):  # fused unless told
        settings = settings_from_cfg(load_config(["vision.lane_channel=true", *given]))
        assert make_models(settings, Runtime(torch.device("cpu"), "fp32")).vision.lane_readout == expected
    older = {k: v for k, v in model.model_args.items() if k != "lane_readout"}  # a checkpoint from before the key
    assert VisionModel(**older).lane_readout == "road"
    with pytest.raises(ConfigError, match="vision.lane_readout"):
        settings_from_cfg(load_config(["vision.lane_channel=true", "vision.lane_readout=wide"]))
    with pytest.raises(ConfigError, match="lane_readout"):
        VisionModel("op-0.10.0", lane_channel=True, lane_readout="wide")
    check_vision_export(model, "op-0.10.0", tmp_path / "driving_vision.onnx", seed=1)


def test_the_lane_prior_steers_by_pure_pursuit_on_the_vision_models_lane_reading(tmp_path: Path) -> None:
    """With lane_prior (op-0.10.0) desired_curvature is pure pursuit towards the lane centre the newest features
    carry (units of 0.3 m at lane_prior_index, 0 and 10 m ahead), plus the head's prediction (pursuit_and_head), that
    prediction times the model's lane-change probability (pursuit_and_head_in_lane_changes) or alone (pursuit):
    2 y / (L^2 + y^2) at L = clip(0.6 v + 2.5, 4, 25) m; the plan is untouched; the config needs
    the vision's lane channel."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.models.policy import lane_change_share, lane_pursuit_curvature

    # a car 0.5 m left of a straight lane centre, heading along it: the centre is 0.5 m right everywhere
    v = torch.tensor([10.0, 30.0, 1.0])  # look-ahead 8.5 m, 20.5 m, the 4 m floor
    half = torch.full((3,), 0.5)
    looks = torch.tensor([8.5, 20.5, 4.0])
    assert torch.allclose(lane_pursuit_curvature(half, half, v), 1.0 / (looks * looks + 0.25), rtol=1e-6)
    # heading 0.05 rad left of the lane on its centre: the centre 10 m ahead is 0.5 m right, y(L) = 0.05 L
    assert torch.allclose(lane_pursuit_curvature(torch.zeros(3), half, v),
                          2 * 0.05 * looks / (looks * looks + (0.05 * looks) ** 2), rtol=1e-6)
    assert float(lane_pursuit_curvature(-half, -half, v)[0]) < 0  # a centre to the left steers left
    batch = policy_batch("op-0.10.0", 6, seed=4)
    index = FEATURE_LEN - 3
    centre = torch.linspace(-0.6, 0.6, 6)
    batch["features_buffer"][:, -1, index] = centre / LANE_CENTRE_SCALE_M
    batch["features_buffer"][:, -1, index + 1] = 2 * centre / LANE_CENTRE_SCALE_M
    plain = make_policy("op-0.10.0").eval()
    steered = make_policy("op-0.10.0")
    steered.lane_prior_index = index
    assert PolicyModel(**{**plain.model_args, "lane_prior_index": index}).lane_prior_index == index
    spec = get_profile("op-0.10.0").policy
    with torch.no_grad():
        a = parse_outputs(spec, plain(*plain.inputs_from_batch(batch)).numpy())
        b = parse_outputs(spec, steered.eval()(*steered.inputs_from_batch(batch)).numpy())
    pursuit = lane_pursuit_curvature(centre, 2 * centre, batch["lateral_control_params"][:, 0]).numpy()
    np.testing.assert_allclose(b["desired_curvature"][:, 0] - a["desired_curvature"][:, 0], pursuit, rtol=1e-4,
                               atol=1e-7)
    np.testing.assert_allclose(b["plan"], a["plan"])
    alone = PolicyModel(**{**steered.model_args, "lane_prior_head": False})
    alone.load_state_dict(steered.state_dict())
    with torch.no_grad():
        c = parse_outputs(spec, alone.eval()(*alone.inputs_from_batch(batch)).numpy())
    np.testing.assert_allclose(c["desired_curvature"][:, 0], pursuit, rtol=1e-4, atol=1e-7)  # the pursuit alone
    np.testing.assert_allclose(c["desired_curvature_stds"], b["desired_curvature_stds"])  # the head's spread
    np.testing.assert_allclose(c["plan"], b["plan"])
    # in lane changes: the head's change weighted by the lane-change probability of the model's own desire_state
    gated = PolicyModel(**{**steered.model_args, "lane_prior_head": "lane_change"})
    gated.load_state_dict(steered.state_dict())
    with torch.no_grad():
        d = parse_outputs(spec, gated.eval()(*gated.inputs_from_batch(batch)).numpy())
        share = lane_change_share(gated.desire_head(gated.encode(*gated.inputs_from_batch(batch)))).numpy()[:, 0]
    assert np.all((share > 0) & (share < 1))
    np.testing.assert_allclose(d["desired_curvature"][:, 0],
                               pursuit + share * (b["desired_curvature"][:, 0] - pursuit), rtol=1e-4, atol=1e-7)
    with pytest.raises(ConfigError, match="lane_prior_head='sometimes'"):
        PolicyModel(**{**steered.model_args, "lane_prior_head": "sometimes"})
    # training: the head learns the target less the pursuit
    steered.train()
    target_parts = steered.loss(batch)[1]["desired_curvature"]
    plain.lane_prior_index = None
    assert target_parts != pytest.approx(plain.train().loss(batch)[1]["desired_curvature"])
    with pytest.raises(ConfigError, match="lane_prior: op-0.10.1's policy has no desired_curvature"):
        PolicyModel("op-0.10.1", "tiny", lane_prior_index=index)
    with pytest.raises(ConfigError, match="needs policy.speed_prior=true"):
        PolicyModel("op-0.10.0", "tiny", lane_prior_index=index)
    for mode in ("pursuit", "pursuit_and_head", "pursuit_and_head_in_lane_changes"):
        with pytest.raises(ConfigError, match=f"lane_prior={mode} needs vision.lane_channel=true"):
            settings_from_cfg(load_config([f"policy.lane_prior={mode}"]))
    with pytest.raises(ConfigError, match="policy.lane_prior"):
        settings_from_cfg(load_config(["policy.lane_prior=true"]))
    one = tuple(x[:1] for x in steered.inputs_from_batch(batch))  # the pursuit is in the exported graph
    path = export_onnx(steered.eval(), spec, one, tmp_path / "driving_policy.onnx")
    with torch.no_grad():
        check_onnxruntime(path, spec, one, steered(*one).numpy())


def test_the_curve_speed_prior_brakes_for_the_bend_the_lane_reading_shows(tmp_path: Path) -> None:
    """curve_speed_mps2 (op-0.10.0 with the lane prior): the quadratic through the lane-centre readings at 0, 10 and
    30 m gives the bend ahead; the speed prior brakes at 1.5 m/s^2 down to sqrt(A / |k|) and cruises on at it, and is
    the constant-velocity prior on a straight or below that speed. The plan's mean moves by exactly the prior's
    change, the config needs the lane prior, and the graph exports."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.models.policy import CURVE_DECEL_MPS2
    from sunnypilot_training.training.models.vision import LANE_CHANNEL_AT_M, bend_curvature

    xs = np.asarray(LANE_CHANNEL_AT_M)
    for radius, side in ((80.0, 1.0), (300.0, -1.0)):  # a bend to the right, one to the left
        circle = side * (radius - np.sqrt(radius * radius - xs * xs))
        k = float(bend_curvature(torch.tensor(circle, dtype=torch.float32)[None])[0])
        assert k == pytest.approx(side / radius, rel=0.1)
    assert float(bend_curvature(torch.tensor([[0.3, 0.5, 0.9]]))[0]) == pytest.approx(0.0, abs=1e-7)  # a line
    index = FEATURE_LEN - 4
    steered = PolicyModel(**{**make_policy("op-0.10.0").model_args, "lane_prior_index": index,
                             "lane_prior_head": "never"})
    curved = PolicyModel(**{**steered.model_args, "curve_speed_mps2": 2.0})
    assert PolicyModel(**curved.model_args).curve_speed_mps2 == 2.0
    curved.load_state_dict(steered.state_dict())
    # bend k = 2 c: y = c x^2 with c = 1 / 160 (radius 80 m); speeds 16, 30 and 5 m/s; the third reading straight
    batch = policy_batch("op-0.10.0", 3, seed=5)
    c = torch.tensor([1.0 / 160.0, 1.0 / 160.0, 1.0 / 160.0])
    reading = c[:, None] * torch.tensor(xs, dtype=torch.float32) ** 2
    batch["features_buffer"][:, -1, index:index + 3] = reading / LANE_CENTRE_SCALE_M
    batch["lateral_control_params"][:, 0] = torch.tensor([16.0, 30.0, 5.0])
    prior = curved._prior_of(curved.inputs_from_batch(batch))
    t = np.asarray(T_IDXS)
    cap = math.sqrt(2.0 / (1.0 / 80.0))  # 12.65 m/s
    for b, v in enumerate((16.0, 30.0, 5.0)):
        target = min(v, cap)
        speed = np.maximum(v - CURVE_DECEL_MPS2 * t, target)
        t_brake = (v - target) / CURVE_DECEL_MPS2
        tb = np.minimum(t, t_brake)
        x = v * tb - 0.5 * CURVE_DECEL_MPS2 * tb ** 2 + target * (t - tb)
        np.testing.assert_allclose(prior[b, :, Plan.VELOCITY.start].numpy(), speed, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(prior[b, :, Plan.POSITION.start].numpy(), x, rtol=1e-5, atol=1e-3)
        accel = prior[b, :, Plan.ACCELERATION.start].numpy()
        assert np.all(accel[t < t_brake] == -CURVE_DECEL_MPS2) and np.all(accel[t >= t_brake] == 0.0)
        others = np.delete(np.arange(15), [Plan.POSITION.start, Plan.VELOCITY.start, Plan.ACCELERATION.start])
        assert np.all(prior[b][:, others].numpy() == 0.0)
    # a straight lane: the constant-velocity prior
    straight = dict(batch)
    straight["features_buffer"] = batch["features_buffer"].clone()
    straight["features_buffer"][:, -1, index:index + 3] = torch.tensor([0.2, 0.4, 1.0]) / LANE_CENTRE_SCALE_M
    plain = steered._prior_of(steered.inputs_from_batch(straight))
    torch.testing.assert_close(curved._prior_of(curved.inputs_from_batch(straight)), plain, rtol=1e-6, atol=1e-5)
    # the plan's mean moves by the prior's change, nothing else does
    spec = get_profile("op-0.10.0").policy
    inputs = curved.inputs_from_batch(batch)
    with torch.no_grad():
        a = parse_outputs(spec, steered.eval()(*inputs).numpy())
        b = parse_outputs(spec, curved.eval()(*inputs).numpy())
    shift = (prior - steered._prior_of(inputs)).numpy()
    np.testing.assert_allclose(b["plan"] - a["plan"], shift, atol=2e-3)
    np.testing.assert_allclose(b["desired_curvature"], a["desired_curvature"], atol=1e-7)
    with pytest.raises(ConfigError, match="curve_speed_mps2=-1"):
        PolicyModel(**{**curved.model_args, "curve_speed_mps2": -1.0})
    with pytest.raises(ConfigError, match="needs policy.lane_prior"):
        PolicyModel(**{**curved.model_args, "lane_prior_index": None})
    with pytest.raises(ConfigError, match="policy.curve_speed=2 needs policy.lane_prior"):
        settings_from_cfg(load_config(["policy.curve_speed=2", "vision.lane_channel=true"]))
    settings = settings_from_cfg(load_config(["policy.curve_speed=2", "vision.lane_channel=true",
                                              "policy.lane_prior=pursuit", "contract.profile=op-0.10.0"]))
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.trainer import make_models
    assert make_models(settings, Runtime(torch.device("cpu"), "fp32")).policy.curve_speed_mps2 == 2.0
    one = tuple(x[:1] for x in inputs)  # the curve speed prior is in the exported graph
    path = export_onnx(curved.eval(), spec, one, tmp_path / "driving_policy.onnx")
    with torch.no_grad():
        check_onnxruntime(path, spec, one, curved(*one).numpy())


def test_the_lead_channel_reads_the_lead_into_hidden_state_and_exports(tmp_path: Path) -> None:
    """vision.lead_channel: an MLP on the fused features says the lead in the car's lane now, as log1p(gap / 10 m)
    and (its speed - the car's) / 2 m/s, where no lead or one beyond 100 m reads as (100 m, 0); hidden_state carries
    it just before the lane channel, its loss part is the robust error (the gap in units of 0.1, relative),
    validation measures it against saying the road is clear, a checkpoint and the config rebuild it, and the graph
    exports."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.models.vision import (
        LEAD_CHANNEL_RANGE_M,
        lane_channel_index,
        lead_channel_index,
        lead_channel_targets,
        lead_reading,
    )
    from sunnypilot_training.training.trainer import make_models
    from sunnypilot_training.training.validation import lead_gap_metrics

    assert lead_channel_index(False, True) == lane_channel_index(False) - 2
    assert lead_channel_index(True, False) == FEATURE_LEN - 3  # the last two before the speed channel
    # targets: a lead 30 m ahead 5 m/s slower, one 150 m ahead, none
    lead = torch.zeros(3, 3, 6, 4)
    lead[0, 0, 0, LeadField.X], lead[0, 0, 0, LeadField.V] = 30.0, 15.0
    lead[1, 0, 0, LeadField.X], lead[1, 0, 0, LeadField.V] = 150.0, 15.0
    prob = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    targets = lead_channel_targets(lead, prob, torch.full((3,), 20.0))
    torch.testing.assert_close(targets, torch.tensor([[math.log1p(3.0), -2.5], [math.log1p(10.0), 0.0],
                                                      [math.log1p(10.0), 0.0]]))
    gap, rel = lead_reading(targets, 0)
    torch.testing.assert_close(gap, torch.tensor([30.0, LEAD_CHANNEL_RANGE_M, LEAD_CHANNEL_RANGE_M]))
    torch.testing.assert_close(rel, torch.tensor([-5.0, 0.0, 0.0]))
    batch = vision_batch(4, seed=3)
    model = make_vision("op-0.10.0", "regression", batch, lane_channel=True, lead_channel=True).eval()
    assert isinstance(model.lead_gap, torch.nn.Sequential) and model.lead_gap[0].in_features == FEATURE_LEN
    assert VisionModel(**model.model_args).lead_gap is not None
    assert make_vision("op-0.10.0", "regression", batch).lead_gap is None
    with torch.no_grad():
        hidden, _, lane, reading = model._features(batch["img"], batch["big_img"])
    start = lead_channel_index(False, True)
    assert torch.allclose(hidden[:, start:start + 2], reading, atol=1e-6)
    assert torch.allclose(hidden[:, -3:], lane, atol=1e-6)  # the lane channel keeps its place
    # the part: a readout that says exactly the targets scores 0; 0.1 more on the gap (10 %) scores 0.5 * 0.5
    want = lead_channel_targets(batch["lead"], batch["lead_prob"], batch["pose"][:, 0])
    with torch.no_grad():
        model.lead_gap[2].weight.zero_()
        for shift, expected in ((0.0, 0.0), (0.1, 0.25)):
            model.lead_gap[2].bias.copy_(want[0] + torch.tensor([shift, 0.0]))
            one = {k: v[:1] for k, v in batch.items()}
            assert model.loss(one)[1]["lead_gap"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    # validation: the truth scores 0 errors, saying "clear" scores the baselines
    lead_np, prob_np, v_np = batch["lead"].numpy(), batch["lead_prob"].numpy(), batch["pose"][:, 0].numpy()
    truth = np.stack(lead_reading(want.numpy(), 0), axis=-1)
    exact = lead_gap_metrics(truth, lead_np, prob_np, v_np)
    assert exact["lead_gap_rel_err"] == pytest.approx(0.0, abs=1e-5) and exact["lead_speed_err_mps"] < 1e-5
    clear = lead_gap_metrics(np.tile([LEAD_CHANNEL_RANGE_M, 0.0], (4, 1)), lead_np, prob_np, v_np)
    assert clear["lead_gap_rel_err"] == pytest.approx(clear["lead_gap_rel_err_clear"], rel=1e-5)
    assert clear["lead_speed_err_mps"] == pytest.approx(clear["lead_speed_err_mps_clear"], rel=1e-5)
    for flag in (False, True):  # vision.lead_channel reaches the model
        settings = settings_from_cfg(load_config([f"vision.lead_channel={str(flag).lower()}"]))
        assert (make_models(settings, Runtime(torch.device("cpu"), "fp32")).vision.lead_gap is not None) is flag
    with pytest.raises(ConfigError, match="vision.lead_channel"):
        settings_from_cfg(load_config(["vision.lead_channel=2"]))
    check_vision_export(model, "op-0.10.0", tmp_path / "driving_vision.onnx", seed=1)


def test_the_follow_prior_brakes_for_the_lead_the_lead_reading_shows(tmp_path: Path) -> None:
    """follow_gap_s (op-0.10.0 with the lead channel): with a lead read nearer than 80 m the speed prior brakes at
    the constant deceleration (at most 4 m/s^2) that matches the lead's speed at a gap of 4 m + T times its speed,
    below that gap it slows under the lead's speed, on a clear road it is the constant-velocity prior; with the
    curve speed prior the slower one holds. The plan's mean moves by exactly the prior's change, the config needs
    the lead channel, and the graph exports."""
    from sunnypilot_training.training.config import load_config, settings_from_cfg
    from sunnypilot_training.training.device import Runtime
    from sunnypilot_training.training.models.policy import FOLLOW_MAX_DECEL_MPS2
    from sunnypilot_training.training.models.vision import LEAD_GAP_SCALE_M, LEAD_SPEED_SCALE_MPS
    from sunnypilot_training.training.trainer import make_models

    lead_index, lane_index = FEATURE_LEN - 5, FEATURE_LEN - 3
    plain = make_policy("op-0.10.0")
    follow = PolicyModel(**{**plain.model_args, "lead_prior_index": lead_index, "follow_gap_s": 1.5})
    assert PolicyModel(**follow.model_args).follow_gap_s == 1.5
    follow.load_state_dict(plain.state_dict())
    # v = 20 m/s: a lead 60 m ahead at 14 m/s (space 35 m: 36 / 70 m/s^2), one 10 m ahead at 20 m/s (too close:
    # slow to 20 - 24 / 2 = 8 m/s at the most), a clear road (100 m, 0), a lead 90 m ahead stopped (out of range)
    gaps, rels = torch.tensor([60.0, 10.0, 100.0, 90.0]), torch.tensor([-6.0, 0.0, 0.0, -20.0])
    batch = policy_batch("op-0.10.0", 4, seed=6)
    batch["features_buffer"][:, -1, lead_index] = torch.log1p(gaps / LEAD_GAP_SCALE_M)
    batch["features_buffer"][:, -1, lead_index + 1] = rels / LEAD_SPEED_SCALE_MPS
    batch["lateral_control_params"][:, 0] = 20.0
    prior = follow._prior_of(follow.inputs_from_batch(batch))
    t = np.asarray(T_IDXS)
    for b, (target, decel) in enumerate(((14.0, 36.0 / 70.0), (8.0, FOLLOW_MAX_DECEL_MPS2), (20.0, 0.0),
                                         (20.0, 0.0))):
        speed = np.maximum(20.0 - decel * t, target)
        np.testing.assert_allclose(prior[b, :, Plan.VELOCITY.start].numpy(), speed, rtol=1e-5, atol=1e-3)
        tb = np.minimum(t, (20.0 - target) / max(decel, 1e-3))
        x = 20.0 * tb - 0.5 * decel * tb ** 2 + target * (t - tb)
        np.testing.assert_allclose(prior[b, :, Plan.POSITION.start].numpy(), x, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(prior[2].numpy(), plain._prior_of(plain.inputs_from_batch(batch))[2].numpy(),
                               atol=1e-4)
    # with the curve speed prior (a bend of radius 80 m: 12.6 m/s at 2 m/s^2 lateral) the slower speed holds
    both = PolicyModel(**{**follow.model_args, "lane_prior_index": lane_index, "lane_prior_head": "never",
                          "curve_speed_mps2": 2.0})
    xs = torch.tensor([0.0, 10.0, 30.0])
    batch["features_buffer"][:, -1, lane_index:lane_index + 3] = xs ** 2 / 160.0 / LANE_CENTRE_SCALE_M
    mixed = both._prior_of(both.inputs_from_batch(batch))
    curve = both.braking_prior(batch["lateral_control_params"][:, 0], xs[None].expand(4, 3) ** 2 / 160.0)
    alone = follow._prior_of(follow.inputs_from_batch(batch))
    v_col = Plan.VELOCITY.start
    torch.testing.assert_close(mixed[..., v_col], torch.minimum(curve[..., v_col], alone[..., v_col]))
    # at t = 0 both start at the car's speed: the acceleration is the harder braking of the two (the controls read it)
    a_col = Plan.ACCELERATION.start
    torch.testing.assert_close(mixed[:, 0, a_col], torch.minimum(curve[:, 0, a_col], alone[:, 0, a_col]))
    assert float(mixed[0, 0, a_col]) == pytest.approx(-1.5)  # the bend's, harder than the lead's 36 / 70 m/s^2
    assert float(mixed[1, 0, a_col]) == pytest.approx(-FOLLOW_MAX_DECEL_MPS2)  # the lead's, too close
    # the plan's mean moves by the prior's change, nothing else does
    spec = get_profile("op-0.10.0").policy
    inputs = follow.inputs_from_batch(batch)
    with torch.no_grad():
        a = parse_outputs(spec, plain.eval()(*inputs).numpy())
        b = parse_outputs(spec, follow.eval()(*inputs).numpy())
    shift = (follow._prior_of(inputs) - plain._prior_of(inputs)).numpy()
    np.testing.assert_allclose(b["plan"] - a["plan"], shift, atol=2e-3)
    with pytest.raises(ConfigError, match="follow_gap_s=-1"):
        PolicyModel(**{**follow.model_args, "follow_gap_s": -1.0})
    with pytest.raises(ConfigError, match="needs vision.lead_channel"):
        PolicyModel(**{**follow.model_args, "lead_prior_index": None})
    with pytest.raises(ConfigError, match="policy.follow_gap=1.5 needs vision.lead_channel"):
        settings_from_cfg(load_config(["policy.follow_gap=1.5", "contract.profile=op-0.10.0"]))
    settings = settings_from_cfg(load_config(["policy.follow_gap=1.5", "vision.lead_channel=true",
                                              "contract.profile=op-0.10.0"]))
    assert make_models(settings, Runtime(torch.device("cpu"), "fp32")).policy.follow_gap_s == 1.5
    one = tuple(x[:1] for x in inputs)  # the follow prior is in the exported graph
    path = export_onnx(follow.eval(), spec, one, tmp_path / "driving_policy.onnx")
    with torch.no_grad():
        check_onnxruntime(path, spec, one, follow(*one).numpy())
