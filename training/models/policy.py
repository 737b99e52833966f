"""The policy model (``driving_policy``): 25 steps of vision features + desire history -> plan and desire state.

Architecture (top to bottom)::

    per step k (25): [LayerNorm(features_buffer[k]) | desire[k] (| prev_desired_curv[k] / 0.01 m^-1, or 0 times it)]
      -> Linear -> + fixed sinusoidal position + Linear(traffic_convention (| scaled lateral_control_params))
      -> pre-norm transformer encoder (self-attention over the 25 steps) -> LayerNorm
      -> cond = MLP([last step | mean over steps])                                   (B, cond_dim)
    cond -> plan (``head``): conditional diffusion over the normalised 33 x 15 plan (a mean head plus a FiLM
            residual-MLP denoiser of the residual, DDPM training, ``steps`` unrolled DDIM steps from
            ``export_samples`` fixed noise draws at export): mu = the mean head, log-std = log(RMS of the samples
            about it + std_floor) times the validation calibration; or an MDN / plain regression head (compared
            in docs/models.md). The loss weighs the plan's columns by PLAN_COLUMN_WEIGHTS.
    cond -> desire_state: MLP logits (8), cross-entropy against the desire one-hot
    cond -> desired_curvature (op-0.10.0): Gaussian MDN (1 mu + 1 log-std)

Speed prior (``speed_prior``, op-0.10.0 only, whose modeld feeds the car's speed v in ``lateral_control_params``):
the plan is the constant-velocity plan at v (x = v t, forward velocity v, the rest 0) plus what the head predicts;
the head learns, normalises and samples the difference. Without it the policy passed the speed it was given on
only roughly (plan speed error 2.1 m/s at t = 0 over 32 test episodes; docs/benchmarks.md).

Curvature prior (``curvature_prior``, op-0.10.0 with the speed prior; its modeld feeds the model's own
``desired_curvature`` back in ``prev_desired_curv``): the fed-back curvature k of the last frame is the prior of
``desired_curvature`` (the head predicts the change), and the plan's prior is the arc of constant curvature k at
speed v (x = sin(k v t) / k, y = (1 - cos(k v t)) / k, yaw k v t, yaw rate k v, lateral acceleration k v^2). The
history also enters the encoder. Trained on the labels' own curvature history, which a model's feedback only
approximates, so in training half the samples get the history shifted by a random offset (``CURVATURE_NOISE_MPS2``
of lateral acceleration at the car's speed): the model must read the curvature from the frames to correct it rather
than copy it - otherwise, fed its own outputs, it would hold whatever curvature it started with.

Lane prior (``lane_prior`` pursuit, pursuit_and_head or pursuit_and_head_in_lane_changes, op-0.10.0 with the speed
prior, and a vision model with ``lane_channel``, whose hidden_state carries its own reading of the lane centre c0 at
the car and c10 10 m ahead at ``lane_prior_index`` and the next value, in units of ``LANE_CENTRE_SCALE_M``):
``desired_curvature`` is pure pursuit towards the lane centre one look-ahead L = clip(0.6 s * v + 2.5 m, 4, 25 m)
ahead, 2 y / (L^2 + y^2) with y = c0 + (c10 - c0) L / 10 m (the newest features_buffer entry, the line through the
two readings), plus what the head predicts - never (``lane_prior_head`` "never": pursuit), always ("always":
pursuit_and_head) or weighted by the probability of a lane change in the model's own desire_state ("lane_change":
pursuit_and_head_in_lane_changes; the pursuit cannot leave a lane by itself). The head always learns the target less
the pursuit (its std is the spread around it). Measured in closed loop, the learned change destabilises lane keeping:
labels follow the expert's actual path, whose perturbations and lane changes move away from the lane centre while
the pursuit steers back, so the head learns to push away from the centre (docs/models.md).

op-0.10.0 multi-hypothesis plan (5 x (495 mu + 495 log-std + 1 logit)): hypothesis 0 = the mean head with the
samples' spread (the consensus, which modeld selects: probability CONSENSUS_WEIGHT), hypotheses 1..4 = the
samples' paths clustered in the graph (soft k-means, ``blocks.cluster_samples``), each the weighted mean and spread
of its cluster, with the rest of the probability in proportion to the cluster's share of the samples (needs
export_samples >= 8).

desired_curvature target (op-0.10.0; 1/m, positive right like device-frame yaw), computed from the plan label with
openpilot's lag-adjusted formula: ``2 * psi(d) / (v * d) - yaw_rate(0) / v`` with d = lateral_control_params[1]
(the lateral delay the model is fed, >= 0.05 s), psi the plan's T_FROM_CURRENT_EULER yaw interpolated at d,
yaw_rate(0) the plan's ORIENTATION_RATE yaw at t = 0 and v = max(plan forward velocity at t = 0, 1 m/s).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ...contract.actions import FORWARD, MIN_SPEED_MPS, RIGHT, YAW, accel_action, pursuit_lookahead_m
from ...contract.constants import (
    DESIRE_LEN,
    DESIRED_CURV_WIDTH,
    FEATURE_LEN,
    HISTORY_BUFFER_LEN,
    IDX_N,
    LATERAL_CONTROL_PARAMS_LEN,
    PLAN_WIDTH,
    PREV_DESIRED_CURV_LEN,
    T_IDXS,
    TRAFFIC_CONVENTION_LEN,
    Desire,
    Plan,
)
from ...contract.inputs import LATERAL_DELAY_S
from ...contract.profiles import DEFAULT_PROFILE, get_profile
from ...errors import ConfigError
from ..diffusion import DiffusionConfig
from .blocks import (
    CLUSTER_EPS,
    DiffusionHead,
    MdnHead,
    RegressionHead,
    all_fitted,
    cluster_samples,
    flat_outputs,
    mdn_flat,
    mlp,
    resolve_size,
    soft_cross_entropy,
)
from .vision import LANE_CHANNEL_AT_M, LEAD_READINGS, bend_curvature, lane_reading_m, lead_reading

PLAN_SHAPE = (IDX_N, PLAN_WIDTH)
CONSENSUS_WEIGHT = 0.6  # op-0.10.0: probability of hypothesis 0 (the mean head); the clusters share the rest
CURVATURE_SCALE_PER_M = 0.01  # the curvature normaliser's default std (1/m)
# Without the curvature prior the graph multiplies prev_desired_curv by 0 (as later releases' modeld does): a model
# that never used a curvature history must not react to the one op-0.10.0's modeld feeds back.
PREV_CURV_GAIN = 0.0
# With it: the history enters the encoder in units of CURVATURE_SCALE_PER_M, and in training a random half of the
# samples get it shifted by N(0, 1) * CURVATURE_NOISE_MPS2 / max(v, CURVATURE_NOISE_MIN_SPEED_MPS)^2 (1/m).
CURVATURE_NOISE_MPS2 = 0.5
CURVATURE_NOISE_MIN_SPEED_MPS = 5.0
CURVATURE_NOISE_SHARE = 0.5
ARC_SMALL_ANGLE = 1e-4  # |k v t| below which the arc uses its series (sin x / x, (1 - cos x) / x)
SPEED_PRIOR = np.zeros(PLAN_SHAPE, np.float32)  # the constant-velocity plan at 1 m/s: x = t, forward velocity 1
SPEED_PRIOR[:, Plan.POSITION.start] = T_IDXS
SPEED_PRIOR[:, Plan.VELOCITY.start] = 1.0
LAT_PARAMS_SCALE = (1.0 / 20.0, 1.0 / 0.2)  # v_ego (m/s), lateral delay (s) -> O(1)
PLAN_HEADS = ("diffusion", "mdn", "regression")
LANE_PRIOR_HEADS = ("always", "never", "lane_change")  # when the lane prior adds the head's desired_curvature
# Loss weight of each plan column (relative; the columns are normalised): what ADE and the controls use (x/y
# position, forward velocity and acceleration, yaw and yaw rate) counts, height, roll and pitch hardly.
PLAN_COLUMN_WEIGHTS = (4.0, 4.0, 0.2,  # position x, y, z
                       2.0, 0.5, 0.1,  # velocity
                       1.0, 0.3, 0.1,  # acceleration
                       0.1, 0.1, 2.0,  # T_FROM_CURRENT_EULER roll, pitch, yaw
                       0.1, 0.1, 2.0)  # ORIENTATION_RATE roll, pitch, yaw
MIN_DELAY_S = 0.05
# ``long_action_weight``: the loss part "long_action" is the squared error, in units of LONG_ACTION_SCALE_MPS2, of the
# acceleration the controls take from the plan's mean (contract.actions.accel_action, at the harness's default action
# time) against the label's. That acceleration is the difference of two nearby speeds divided by 0.25 s; weighed only
# as two of the plan's 495 numbers it stays close to noise, and the closed loop integrates it.
LONG_ACTION_SCALE_MPS2 = 0.5
LANE_READINGS = len(LANE_CHANNEL_AT_M)
# ``curve_speed_mps2`` (the curve speed prior): the bend ahead, from the quadratic through the lane-centre readings at
# LANE_CHANNEL_AT_M, caps the speed prior at sqrt(curve_speed_mps2 / |curvature|), reached braking at
# CURVE_DECEL_MPS2 (about where the expert's late braking for a curve starts); curvatures below CURVE_MIN_PER_M
# count as it (no cap on a straight)
CURVE_DECEL_MPS2 = 1.5
CURVE_MIN_PER_M = 1e-4
# ``follow_gap_s`` (the follow prior): with a lead in the vision's lead reading (nearer than FOLLOW_RANGE_M), the
# speed prior brakes at the constant deceleration that matches the lead's speed where the gap has shrunk to
# FOLLOW_STANDSTILL_M + follow_gap_s times the lead's speed (at most FOLLOW_MAX_DECEL_MPS2), and below that gap slows
# to open it again (by the missing metres per FOLLOW_OPEN_S below the lead's speed); with the curve speed prior the
# slower of the two holds at each time
FOLLOW_RANGE_M = 80.0
FOLLOW_STANDSTILL_M = 4.0
FOLLOW_MAX_DECEL_MPS2 = 4.0
FOLLOW_OPEN_S = 2.0
FOLLOW_MIN_SPACE_M = 1.0


@dataclass(frozen=True)
class PolicySize:
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    mlp_mult: int = 2
    cond_dim: int = 128
    head_dim: int = 64
    denoiser_width: int = 192
    denoiser_depth: int = 2


POLICY_SIZES: dict[str, PolicySize] = {
    "tiny": PolicySize(),
    "base": PolicySize(d_model=256, layers=4, heads=8, mlp_mult=4, cond_dim=512, head_dim=256, denoiser_width=512,
                       denoiser_depth=4),
}


def sinusoidal_positions(length: int, dim: int) -> torch.Tensor:
    """(length, dim) fixed sinusoidal position table."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freqs)
    table[:, 1::2] = torch.cos(pos * freqs)
    return table


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ConfigError(f"model.size: d_model={dim} is not divisible by heads={heads}")
        self.heads, self.dim, self.head_dim = heads, dim, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[0], x.shape[1]
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, T, hd)
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(self.head_dim)), dim=-1)  # (B, H, T, T)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.dim)  # (B, T, D)
        return self.proj(y)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mult: int):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = mlp(dim, mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TemporalEncoder(nn.Module):
    """(B, 25, 512) features + (B, 25, E) per-step extras + (B, G) global inputs -> (B, cond_dim)."""

    def __init__(self, step_extra_dim: int, global_dim: int, size: PolicySize):
        super().__init__()
        d = size.d_model
        self.feature_norm = nn.LayerNorm(FEATURE_LEN)
        self.step_proj = nn.Linear(FEATURE_LEN + step_extra_dim, d)
        self.global_proj = nn.Linear(global_dim, d)
        self.register_buffer("positions", sinusoidal_positions(HISTORY_BUFFER_LEN, d), persistent=False)
        self.blocks = nn.ModuleList(TransformerBlock(d, size.heads, size.mlp_mult) for _ in range(size.layers))
        self.norm = nn.LayerNorm(d)
        self.out = mlp(2 * d, size.cond_dim, size.cond_dim)

    def forward(self, features: torch.Tensor, step_extra: torch.Tensor, global_in: torch.Tensor) -> torch.Tensor:
        x = self.step_proj(torch.cat([self.feature_norm(features), step_extra], dim=-1))  # (B, T, d)
        x = x + self.positions + self.global_proj(global_in)[:, None]
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.out(torch.cat([x[:, -1], x.mean(dim=1)], dim=-1))  # (B, cond_dim)


class PolicyModel(nn.Module):
    """``driving_policy`` for one contract profile; ``forward(*profile_inputs)`` is the exported graph.

    Inputs are positional in the profile's order (``input_names``); build them from a dataset batch with
    :meth:`inputs_from_batch`, which takes only those keys, so no label can enter. Fit the plan normaliser
    (:meth:`fit_normalizers` or :meth:`set_plan_normalizer`) before training; its stats live in the state_dict.
    """

    def __init__(self, profile_id: str = DEFAULT_PROFILE, size: str | Mapping | PolicySize = "tiny",
                 diffusion: DiffusionConfig | Mapping | None = None, loss_weights: Mapping[str, float] | None = None,
                 head: str = "diffusion", feature_dropout: float = 0.0, feature_noise: float = 0.0,
                 speed_prior: bool = False, curvature_prior: bool = False, lane_prior_index: int | None = None,
                 lane_prior_head: bool | str = "always", long_action_weight: float = 0.0,
                 curve_speed_mps2: float = 0.0, lead_prior_index: int | None = None, follow_gap_s: float = 0.0):
        super().__init__()
        if head not in PLAN_HEADS:
            raise ConfigError(f"policy.head={head!r}: use one of {list(PLAN_HEADS)}")
        self.head_type = head
        self.profile_id = profile_id
        self.spec = get_profile(profile_id).policy
        self.input_names = tuple(i.name for i in self.spec.inputs)
        self.size = resolve_size(size, POLICY_SIZES, PolicySize)
        self.diffusion_config = diffusion if isinstance(diffusion, DiffusionConfig) else \
            DiffusionConfig.from_dict(diffusion)
        self.loss_weights = dict(loss_weights or {})
        if not long_action_weight >= 0.0:
            raise ConfigError(f"long_action_weight={long_action_weight!r}: expected a weight >= 0 (0: no such loss)")
        self.long_action_weight = float(long_action_weight)
        self.feature_dropout, self.feature_noise = float(feature_dropout), float(feature_noise)
        self.plan_hyp = self.spec.head("plan").hypotheses
        if self.plan_hyp > 1 and head != "diffusion":
            raise ConfigError(f"policy.head={head!r}: {profile_id}'s {self.plan_hyp}-hypothesis plan is built from "
                              f"diffusion samples; use policy.head=diffusion with this profile")
        if self.plan_hyp > 1 and self.diffusion_config.export_samples < 2 * (self.plan_hyp - 1):
            raise ConfigError(f"diffusion.export_samples={self.diffusion_config.export_samples}: {profile_id} has a "
                              f"{self.plan_hyp}-hypothesis plan; use at least {2 * (self.plan_hyp - 1)}")
        self.has_curvature = any(h.name == "desired_curvature" for h in self.spec.heads)
        if speed_prior and "lateral_control_params" not in self.input_names:
            raise ConfigError(f"policy.speed_prior=true: {profile_id}'s policy is not given the car's speed "
                              f"(only op-0.10.0's lateral_control_params carries it); set it false")
        self.speed_prior = bool(speed_prior)
        if curvature_prior and not (self.has_curvature and self.speed_prior):
            raise ConfigError(f"policy.curvature_prior=true: {profile_id}'s policy "
                              + ("is not fed its own desired_curvature back (only op-0.10.0's prev_desired_curv is)"
                                 if not self.has_curvature else "needs policy.speed_prior=true (the arc is at the "
                                 "car's speed)") + "; set it false")
        self.curvature_prior = bool(curvature_prior)
        if lane_prior_index is not None and not (self.has_curvature and self.speed_prior
                                                 and 0 <= lane_prior_index <= FEATURE_LEN - LANE_READINGS):
            raise ConfigError(f"policy.lane_prior: {profile_id}'s policy " + (
                "has no desired_curvature output (only op-0.10.0's has)" if not self.has_curvature else
                "needs policy.speed_prior=true (the look-ahead is at the car's speed)" if not self.speed_prior else
                f"reads the lane centre at features index {lane_prior_index}, outside 0..{FEATURE_LEN - LANE_READINGS}")
                + "; set it to none")
        self.lane_prior_index = None if lane_prior_index is None else int(lane_prior_index)
        # with the lane prior: add the head's learned change always, never, or in a lane change (LANE_PRIOR_HEADS;
        # checkpoints before the gate hold a bool)
        when = ("always" if lane_prior_head else "never") if isinstance(lane_prior_head, bool) else lane_prior_head
        if when not in LANE_PRIOR_HEADS:
            raise ConfigError(f"lane_prior_head={lane_prior_head!r}: expected one of {list(LANE_PRIOR_HEADS)}")
        self.lane_prior_head = when
        if not curve_speed_mps2 >= 0.0:
            raise ConfigError(f"curve_speed_mps2={curve_speed_mps2!r}: expected a lateral acceleration >= 0 (0: off)")
        if curve_speed_mps2 > 0.0 and (self.lane_prior_index is None or self.curvature_prior):
            raise ConfigError(f"policy.curve_speed={curve_speed_mps2:g}: the curve speed prior caps the constant-"
                              "velocity prior by the bend the vision model's lane reading shows; it needs "
                              "policy.lane_prior (and vision.lane_channel) and policy.curvature_prior=false; "
                              "set policy.curve_speed=0 otherwise")
        self.curve_speed_mps2 = float(curve_speed_mps2)
        if not follow_gap_s >= 0.0:
            raise ConfigError(f"follow_gap_s={follow_gap_s!r}: expected a time gap >= 0 s (0: off)")
        if follow_gap_s > 0.0 and (lead_prior_index is None or not self.speed_prior or self.curvature_prior
                                   or not 0 <= lead_prior_index <= FEATURE_LEN - LEAD_READINGS):
            raise ConfigError(f"policy.follow_gap={follow_gap_s:g}: the follow prior brakes the speed prior for the "
                              "lead the vision model's lead reading shows; it needs vision.lead_channel=true, "
                              "policy.speed_prior=true and policy.curvature_prior=false; set policy.follow_gap=0 "
                              "otherwise")
        self.follow_gap_s = float(follow_gap_s)
        self.lead_prior_index = None if follow_gap_s == 0.0 else int(lead_prior_index)
        self.register_buffer("speed_prior_plan", torch.from_numpy(SPEED_PRIOR.copy()), persistent=False)
        self.register_buffer("t_idxs", torch.tensor(T_IDXS, dtype=torch.float32), persistent=False)
        self.register_buffer("plan_columns", torch.eye(PLAN_WIDTH), persistent=False)
        s = self.size
        step_extra = DESIRE_LEN + (PREV_DESIRED_CURV_LEN if self.has_curvature else 0)
        global_dim = TRAFFIC_CONVENTION_LEN + (LATERAL_CONTROL_PARAMS_LEN if self.has_curvature else 0)
        self.encoder = TemporalEncoder(step_extra, global_dim, s)
        if head == "diffusion":
            self.plan_head = DiffusionHead(PLAN_SHAPE, s.cond_dim, s.denoiser_width, s.denoiser_depth,
                                           self.diffusion_config)
        else:
            self.plan_head = (MdnHead if head == "mdn" else RegressionHead)(PLAN_SHAPE, s.cond_dim, s.denoiser_width)
        self.register_buffer("plan_weight", torch.tensor(PLAN_COLUMN_WEIGHTS, dtype=torch.float32),
                             persistent=False)
        self.desire_head = mlp(s.cond_dim, s.head_dim, DESIRE_LEN)
        if self.has_curvature:
            self.curvature_head = MdnHead((DESIRED_CURV_WIDTH,), s.cond_dim, s.head_dim)
            self.curvature_head.normalizer.set(np.zeros(1), np.full(1, CURVATURE_SCALE_PER_M))

    @property
    def normalizers_fitted(self) -> bool:
        """True once the plan normaliser has statistics (the curvature one starts with a fixed scale)."""
        return all_fitted(self)

    @property
    def model_args(self) -> dict:
        """Constructor arguments as plain data (for checkpoints): ``PolicyModel(**model.model_args)`` rebuilds it."""
        return {"profile_id": self.profile_id, "size": asdict(self.size), "diffusion": self.diffusion_config.to_dict(),
                "loss_weights": dict(self.loss_weights), "head": self.head_type,
                "feature_dropout": self.feature_dropout, "feature_noise": self.feature_noise,
                "speed_prior": self.speed_prior, "curvature_prior": self.curvature_prior,
                "lane_prior_index": self.lane_prior_index, "lane_prior_head": self.lane_prior_head,
                "long_action_weight": self.long_action_weight, "curve_speed_mps2": self.curve_speed_mps2,
                "lead_prior_index": self.lead_prior_index, "follow_gap_s": self.follow_gap_s}

    # --- inputs ---------------------------------------------------------------------------------------------
    def inputs_from_batch(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The profile's inputs, in order, from a PolicyDataset batch (labels are not touched)."""
        missing = [n for n in self.input_names if n not in batch]
        if missing:
            raise KeyError(f"policy batch lacks inputs {missing}; {self.profile_id} needs {list(self.input_names)}")
        return tuple(batch[n].float() for n in self.input_names)

    def _named(self, inputs: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"{self.profile_id} policy takes {len(self.input_names)} inputs "
                            f"{list(self.input_names)}, got {len(inputs)}")
        bad = [] if torch.jit.is_tracing() else [  # shapes are traced values while exporting; checked eagerly
            f"{n} {tuple(x.shape)}" for n, x in zip(self.input_names, inputs)
            if tuple(x.shape[1:]) != self.spec.input(n).shape[1:]]
        if bad:
            raise ValueError(f"policy inputs with wrong shapes: {bad}; expected (B, ...) of {self.spec.input_shapes()}")
        return dict(zip(self.input_names, inputs))

    def encode(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Conditioning vector (B, cond_dim) from the profile inputs."""
        x = self._named(inputs)
        desire = x["desire_pulse"] if "desire_pulse" in x else x["desire"]  # (B, 25, 8)
        step_extra, global_in = [desire], [x["traffic_convention"]]
        if self.has_curvature:
            gain = 1.0 / CURVATURE_SCALE_PER_M if self.curvature_prior else PREV_CURV_GAIN
            step_extra.append(x["prev_desired_curv"] * gain)  # (B, 25, 1); without the curvature prior ignored
            global_in.append(x["lateral_control_params"] * torch.tensor(LAT_PARAMS_SCALE, device=desire.device))
        return self.encoder(x["features_buffer"], torch.cat(step_extra, dim=-1), torch.cat(global_in, dim=-1))

    def prior(self, speed_mps: torch.Tensor, curvature: torch.Tensor | None = None) -> torch.Tensor | float:
        """(B, 33, 15) the plan prior with ``speed_prior``, else 0: the plan is this plus what the plan head predicts.
        The constant-velocity plan at each speed (B,), or with ``curvature_prior`` the arc of constant ``curvature``
        (B,) (1/m, positive right) at that speed (see the module doc)."""
        if not self.speed_prior:
            return 0.0
        if not self.curvature_prior or curvature is None:
            return speed_mps[:, None, None] * self.speed_prior_plan
        v, k = speed_mps[:, None], curvature[:, None]  # (B, 1)
        vt = v * self.t_idxs  # (B, 33) distance along the arc
        theta = k * vt  # heading change
        small = theta.abs() < ARC_SMALL_ANGLE
        safe = torch.where(small, torch.ones_like(theta), theta)
        sinc = torch.where(small, 1.0 - theta * theta / 6.0, torch.sin(safe) / safe)
        cosc = torch.where(small, 0.5 * theta, (1.0 - torch.cos(safe)) / safe)
        e = self.plan_columns  # (15, 15) one row per plan column
        yaw, rate = Plan.T_FROM_CURRENT_EULER.start + YAW, Plan.ORIENTATION_RATE.start + YAW
        x, y = Plan.POSITION.start + FORWARD, Plan.POSITION.start + RIGHT
        speed, lateral_accel = Plan.VELOCITY.start + FORWARD, Plan.ACCELERATION.start + RIGHT
        return ((vt * sinc)[..., None] * e[x] + (vt * cosc)[..., None] * e[y]
                + v[..., None] * e[speed] + (k * v * v)[..., None] * e[lateral_accel]
                + theta[..., None] * e[yaw] + (k * v)[..., None] * e[rate])

    def _fed_back_curvature(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor | None:
        """(B,) the newest entry of ``prev_desired_curv`` with ``curvature_prior``, else None."""
        return self._named(inputs)["prev_desired_curv"][:, -1, 0] if self.curvature_prior else None

    def _prior_of(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor | float:
        """:meth:`prior` at the speed (op-0.10.0's ``lateral_control_params[0]``) and fed-back curvature in the
        inputs."""
        if not self.speed_prior:
            return 0.0
        speed = self._named(inputs)["lateral_control_params"][:, 0]
        if self.curve_speed_mps2 > 0.0 or self.follow_gap_s > 0.0:
            return self.braking_prior(speed, self._lane_reading(inputs) if self.curve_speed_mps2 > 0.0 else None,
                                      self._lead_reading(inputs) if self.follow_gap_s > 0.0 else None)
        return self.prior(speed, self._fed_back_curvature(inputs))

    def _lane_reading(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """(B, LANE_READINGS) m: the lane centre at LANE_CHANNEL_AT_M the newest features_buffer entry carries."""
        return lane_reading_m(self._named(inputs)["features_buffer"][:, -1], self.lane_prior_index)

    def _lead_reading(self, inputs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(gap (B,) m, the lead's speed less the car's (B,) m/s) the newest features_buffer entry carries."""
        return lead_reading(self._named(inputs)["features_buffer"][:, -1], self.lead_prior_index)

    def curve_target(self, speed_mps: torch.Tensor, reading_m: torch.Tensor) -> torch.Tensor:
        """(B,) the curve speed prior's speed: the speeds (B,), down to sqrt(curve_speed_mps2 / |k|) where that is
        lower, k the curvature of the quadratic through the lane readings (B, LANE_READINGS) (m, right) at
        LANE_CHANNEL_AT_M (:func:`bend_curvature`)."""
        k = bend_curvature(reading_m).abs().clamp_min(CURVE_MIN_PER_M)  # (B,)
        return torch.minimum(speed_mps, torch.sqrt(self.curve_speed_mps2 / k))

    def follow_target(self, speed_mps: torch.Tensor, gap_m: torch.Tensor, relative_mps: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(target speed (B,), deceleration (B,) m/s^2) of the follow prior (module doc) at speeds (B,) for a lead
        gap_m ahead (B,) going relative_mps faster than the car (B,); no braking without a lead in FOLLOW_RANGE_M."""
        v = speed_mps
        lead_v = (v + relative_mps).clamp_min(0.0)
        space = gap_m - (FOLLOW_STANDSTILL_M + self.follow_gap_s * lead_v)  # free metres before the wanted gap
        target = torch.minimum(v, (lead_v + space.clamp_max(0.0) / FOLLOW_OPEN_S).clamp_min(0.0))
        target = torch.where(gap_m < FOLLOW_RANGE_M, target, v)
        decel = (v - target) ** 2 / (2.0 * space.clamp_min(FOLLOW_MIN_SPACE_M))
        return target, decel.clamp(1e-3, FOLLOW_MAX_DECEL_MPS2)

    def braking_prior(self, speed_mps: torch.Tensor, reading_m: torch.Tensor | None = None,
                      lead: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """(B, 33, 15) the constant-velocity plan at speeds (B,), braking for the bend the lane readings
        (B, LANE_READINGS) show (curve speed prior: at CURVE_DECEL_MPS2 down to :meth:`curve_target`) and for the
        lead reading (gap (B,) m, relative speed (B,) m/s; follow prior: :meth:`follow_target`), the slower of the
        two at each time; straight on."""
        v = speed_mps[:, None]  # (B, 1)
        t = self.t_idxs  # (33,)
        profiles = []  # (x, speed, accel) each (B, 33), each at most the cruise at v
        if reading_m is not None:
            profiles.append(_braking(v, self.curve_target(speed_mps, reading_m)[:, None], CURVE_DECEL_MPS2, t))
        if lead is not None:
            target, decel = self.follow_target(speed_mps, *lead)
            profiles.append(_braking(v, target[:, None], decel[:, None], t))
        x = v * t  # the cruise
        speed, accel = v.expand_as(x), torch.zeros_like(x)
        for x2, speed2, accel2 in profiles:  # the slower one's acceleration; at equal speeds (t = 0) the harder braking
            accel = torch.where((speed2 < speed) | ((speed2 == speed) & (accel2 < accel)), accel2, accel)
            x, speed = torch.minimum(x, x2), torch.minimum(speed, speed2)
        e = self.plan_columns
        return (x[..., None] * e[Plan.POSITION.start + FORWARD] + speed[..., None] * e[Plan.VELOCITY.start + FORWARD]
                + accel[..., None] * e[Plan.ACCELERATION.start + FORWARD])

    def _curvature_prior_of(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor | float:
        """(B, 1) the ``desired_curvature`` prior: the fed-back curvature with ``curvature_prior`` plus the lane
        centre's pure pursuit with ``lane_prior``; 0 with neither."""
        k = self._fed_back_curvature(inputs)
        prior = 0.0 if k is None else k[:, None]
        if self.lane_prior_index is not None:
            reading = self._lane_reading(inputs)  # (B, LANE_READINGS) m: the centre at LANE_CHANNEL_AT_M
            prior = prior + lane_pursuit_curvature(reading[:, 0], reading[:, 1],
                                                   self._named(inputs)["lateral_control_params"][:, 0])[:, None]
        return prior

    # --- graph ------------------------------------------------------------------------------------------------
    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """(B, output_width) float32 in the profile's layout, from the profile's inputs in order."""
        cond = self.encode(*inputs)  # (B, cond_dim)
        prior = self._prior_of(inputs)  # (B, 33, 15) or 0
        out = {"desire_state": self.desire_head(cond)}
        if not isinstance(self.plan_head, DiffusionHead):
            mu, log_std = self.plan_head(cond)
            out["plan"] = mdn_flat(mu + prior, log_std)
        elif self.plan_hyp > 1:
            mu, log_std, samples = self.plan_head.export_stats(cond)  # samples (B, S, 33, 15) normalised
            mu, log_std, logits = self._plan_hypotheses(mu, log_std, samples)
            prior = prior[:, None] if self.speed_prior else prior
            out["plan"] = mdn_flat(mu + prior, log_std, logits, hypotheses=self.plan_hyp)
        else:
            mu, log_std = self.plan_head.export_stats(cond)[:2]
            out["plan"] = mdn_flat(mu + prior, log_std)
        if self.has_curvature:
            mu, log_std = self.curvature_head(cond)
            if self.lane_prior_index is not None and self.lane_prior_head == "never":
                mu = torch.zeros_like(mu)  # lane_prior=pursuit: the pursuit alone; the head's std is its spread
            elif self.lane_prior_index is not None and self.lane_prior_head == "lane_change":
                mu = mu * lane_change_share(out["desire_state"])  # the head's change only while leaving the lane
            out["desired_curvature"] = mdn_flat(mu + self._curvature_prior_of(inputs), log_std)
        return flat_outputs(self.spec, out)

    def _plan_hypotheses(self, mu0: torch.Tensor, log_std0: torch.Tensor, samples: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Consensus (mu0, log_std0) + the samples' clusters -> mu, log_std (B, H, 33, 15) and logits (B, H, 1).

        The samples (B, S, 33, 15, normalised) are clustered by their path (x, y at every step) with soft k-means
        seeded at the paths farthest from the consensus (``blocks.cluster_samples``); hypothesis h >= 1 is cluster
        h's weighted mean and spread. Probabilities: the consensus keeps CONSENSUS_WEIGHT (so modeld, which drives
        the most probable hypothesis, drives the mean head), each cluster gets the rest in proportion to its share
        of the samples - a future the samples reach twice as often weighs twice as much."""
        k = self.plan_hyp - 1
        path = slice(Plan.POSITION.start, Plan.POSITION.start + 2)
        points = samples[..., path].flatten(2)  # (B, S, 66)
        anchor = self.plan_head.normalizer.normalize(mu0)[..., path].flatten(1)  # (B, 66)
        resp = cluster_samples(points, anchor, k)  # (B, S, k)
        mu_c, log_std_c = self.plan_head.cluster_stats(samples, resp)
        mu = torch.cat([mu0[:, None], mu_c], dim=1)
        log_std = torch.cat([log_std0[:, None], log_std_c], dim=1)
        share = resp.mean(dim=1)  # (B, k), sums to 1
        logits = torch.cat([torch.full_like(share[:, :1], math.log(CONSENSUS_WEIGHT)),
                            torch.log((1.0 - CONSENSUS_WEIGHT) * share + CLUSTER_EPS)], dim=1)
        return mu, log_std, logits[:, :, None]

    @torch.no_grad()
    def sample(self, *inputs: torch.Tensor, n_samples: int = 8,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Stochastic plan samples (B, n_samples, 33, 15) in physical units (fresh noise, DDIM; diffusion head)."""
        if not isinstance(self.plan_head, DiffusionHead):
            raise ConfigError(f"policy.head={self.head_type!r} has no samples; only the diffusion head samples plans")
        prior = self._prior_of(inputs)
        return self.plan_head.sample(self.encode(*inputs), n_samples, generator) + \
            (prior[:, None] if self.speed_prior else prior)

    # --- training ---------------------------------------------------------------------------------------------
    def loss(self, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted sum of the plan diffusion loss, desire_state cross-entropy, (op-0.10.0) curvature NLL and, with
        ``long_action_weight``, the error of the longitudinal action the plan's mean asks for."""
        inputs = self._perturbed(self.inputs_from_batch(batch))
        cond = self.encode(*inputs)
        plan = batch["plan"].float()  # (B, 33, 15)
        prior = self._prior_of(inputs)
        parts = {
            "plan": self.plan_head.loss(cond, plan - prior, self.plan_weight),
            "desire_state": soft_cross_entropy(self.desire_head(cond), batch["desire_state"].float()),
        }
        if self.has_curvature:
            target = desired_curvature_target(plan, batch["lateral_control_params"].float())  # (B, 1)
            parts["desired_curvature"] = self.curvature_head.loss(cond, target - self._curvature_prior_of(inputs))
        if self.long_action_weight > 0.0:
            error = accel_action(self.plan_head.mean(cond) + prior) - accel_action(plan)  # (B,) m/s^2
            parts["long_action"] = (error / LONG_ACTION_SCALE_MPS2).square().mean()
        weights = {"long_action": self.long_action_weight, **self.loss_weights}
        total = sum(weights.get(k, 1.0) * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def _perturbed(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """In training, the features_buffer with ``feature_dropout`` (features zeroed, the rest scaled up) and
        Gaussian ``feature_noise``: the policy learns from features of a few dozen episodes, which it would
        otherwise memorise; with ``curvature_prior`` the fed-back curvature history shifted (module doc). The
        exported graph and evaluation (``eval()``) see the inputs as they are."""
        if not self.training:
            return inputs
        if self.curvature_prior:
            inputs = self.shift_fed_back_curvature(inputs)
        if self.feature_dropout == 0.0 and self.feature_noise == 0.0:
            return inputs
        k = self.input_names.index("features_buffer")
        features = inputs[k]
        if self.feature_dropout > 0.0:
            features = nn.functional.dropout(features, self.feature_dropout, training=True)
        if self.feature_noise > 0.0:
            features = features + self.feature_noise * torch.randn_like(features)
        return inputs[:k] + (features,) + inputs[k + 1:]

    def shift_fed_back_curvature(self, inputs: tuple[torch.Tensor, ...],
                                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """The inputs with ``prev_desired_curv`` shifted by one random offset per sample, in a random
        ``CURVATURE_NOISE_SHARE`` of the samples (module doc): training's perturbation, and validation's with a fixed
        ``generator``."""
        x = self._named(inputs)
        speed = x["lateral_control_params"][:, 0]
        shift = curvature_shift(speed if generator is None else speed.cpu(), generator).to(speed.device)
        k = self.input_names.index("prev_desired_curv")
        return inputs[:k] + (x["prev_desired_curv"] + shift[:, None, None],) + inputs[k + 1:]

    def set_plan_normalizer(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        """Plan statistics (33, 15) each (or broadcastable), in physical units."""
        self.plan_head.normalizer.set(mean, std)

    @torch.no_grad()
    def fit_normalizers(self, plans: np.ndarray | torch.Tensor, lateral_control_params: np.ndarray | None = None,
                        fed_back_curvature: np.ndarray | None = None) -> None:
        """Fit the plan normaliser from plan labels (N, 33, 15); op-0.10.0 also fits the curvature normaliser from
        the derived targets (``lateral_control_params`` (N, 2), default delay ``LATERAL_DELAY_S``). With
        ``curvature_prior`` both fit the difference from the prior at ``fed_back_curvature`` (N,) (the newest
        ``prev_desired_curv`` entry of each sample; default: none fed back, zeros) shifted as in training."""
        plans_t = torch.as_tensor(np.asarray(plans, dtype=np.float32))
        if lateral_control_params is None:  # the speed the car had: the plan's own at t = 0
            lat = torch.stack([plans_t[:, 0, Plan.VELOCITY.start], torch.full_like(plans_t[:, 0, 0], LATERAL_DELAY_S)],
                              dim=1)
        else:
            lat = torch.as_tensor(np.asarray(lateral_control_params, dtype=np.float32))
        k = None
        if self.curvature_prior:  # as training feeds it: half the samples shifted (a fixed draw)
            k = torch.zeros(len(plans_t)) if fed_back_curvature is None else \
                torch.as_tensor(np.asarray(fed_back_curvature, dtype=np.float32))
            k = k + curvature_shift(lat[:, 0], torch.Generator().manual_seed(0))
        device = self.speed_prior_plan.device
        prior = self.prior(lat[:, 0].to(device), None if k is None else k.to(device))
        prior = prior.cpu() if torch.is_tensor(prior) else prior  # (N, 33, 15) or 0
        self.plan_head.normalizer.fit((plans_t - prior).numpy())
        if self.has_curvature:
            target = desired_curvature_target(plans_t, lat)
            self.curvature_head.normalizer.fit((target - (0.0 if k is None else k[:, None])).numpy())


def _braking(v: torch.Tensor, target: torch.Tensor, decel: torch.Tensor | float, t: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x (B, 33) m, speed (B, 33) m/s, acceleration (B, 33) m/s^2) at times t (33,) of a car at speeds v (B, 1)
    braking at decel (B, 1 or a number) m/s^2 down to target (B, 1) <= v and cruising on at it."""
    until = (v - target) / decel  # (B, 1) when the braking ends (0: no braking)
    braking = torch.minimum(t, until)  # (B, 33) time spent braking so far
    x = v * braking - 0.5 * decel * braking * braking + target * (t - braking)
    speed = v - decel * braking
    accel = -decel * (t < until).to(speed.dtype)
    return x, speed, accel


def lane_pursuit_curvature(centre_0_m: torch.Tensor, centre_ahead_m: torch.Tensor, speed_mps: torch.Tensor
                           ) -> torch.Tensor:
    """(B,) 1/m, positive right: pure pursuit towards the lane centre one look-ahead ahead, the centre taken on the
    line through its readings at LANE_CHANNEL_AT_M (the car and 10 m ahead; (B,) each, m, right), at speeds (B,)."""
    look = pursuit_lookahead_m(speed_mps)
    near, far = LANE_CHANNEL_AT_M[:2]
    y = centre_0_m + (centre_ahead_m - centre_0_m) * (look - near) / (far - near)
    return 2.0 * y / (look * look + y * y)


def lane_change_share(desire_state_logits: torch.Tensor) -> torch.Tensor:
    """(B, 1) the probability the model gives a lane change (left or right) in its own desire_state (B, 8)."""
    p = torch.softmax(desire_state_logits, dim=-1)
    return p[:, Desire.LANE_CHANGE_LEFT:Desire.LANE_CHANGE_LEFT + 1] + \
        p[:, Desire.LANE_CHANGE_RIGHT:Desire.LANE_CHANGE_RIGHT + 1]


def curvature_shift(speed_mps: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B,) the training shift of the fed-back curvature (1/m) at speeds (B,): N(0, 1) * CURVATURE_NOISE_MPS2 /
    max(v, CURVATURE_NOISE_MIN_SPEED_MPS)^2 in a random CURVATURE_NOISE_SHARE of the samples, else 0."""
    speed = speed_mps.clamp_min(CURVATURE_NOISE_MIN_SPEED_MPS)
    noise = torch.randn(speed.shape, generator=generator, device=speed.device, dtype=speed.dtype)
    keep = torch.rand(speed.shape, generator=generator, device=speed.device, dtype=speed.dtype) < CURVATURE_NOISE_SHARE
    return noise * CURVATURE_NOISE_MPS2 / (speed * speed) * keep.to(speed.dtype)


def desired_curvature_target(plan: torch.Tensor, lateral_control_params: torch.Tensor) -> torch.Tensor:
    """(B, 1) lag-adjusted desired curvature (1/m, positive right) from plan labels (B, 33, 15); see module doc."""
    delay_s = lateral_control_params[:, 1].clamp_min(MIN_DELAY_S)  # (B,)
    speed_mps = plan[:, 0, Plan.VELOCITY][:, FORWARD].clamp_min(MIN_SPEED_MPS)  # (B,)
    yaw_rad = plan[:, :, Plan.T_FROM_CURRENT_EULER][:, :, YAW]  # (B, 33)
    yaw_rate0 = plan[:, 0, Plan.ORIENTATION_RATE][:, YAW]  # (B,)
    t_idxs = torch.as_tensor(T_IDXS, dtype=plan.dtype, device=plan.device)  # (33,)
    hi = torch.searchsorted(t_idxs, delay_s.contiguous()).clamp(1, IDX_N - 1)  # (B,)
    t0, t1 = t_idxs[hi - 1], t_idxs[hi]
    w = ((delay_s - t0) / (t1 - t0)).clamp(0.0, 1.0)
    psi = torch.lerp(yaw_rad.gather(1, (hi - 1)[:, None])[:, 0], yaw_rad.gather(1, hi[:, None])[:, 0], w)
    return (2.0 * psi / (speed_mps * delay_s) - yaw_rate0 / speed_mps)[:, None]
