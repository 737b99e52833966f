"""Our trained vision and policy fused into the one graph the 2026 runtimes run (torch modules to trace).

* :class:`SupercomboGraph` (openpilot master June-September 2026): ``img``, ``big_img``, ``features_buffer`` (1, 24,
  512) of *past* features, ``desire_pulse``, ``traffic_convention``, ``action_t`` -> ``outputs``. The graph runs the
  vision model, appends its own ``hidden_state`` to the 24 past features (the same 25-step window the policy was
  trained on: frames t-96, t-92, ..., t) and runs the policy.
* :class:`StatefulGraph` (from September 2026): the history lives in the graph. Inputs ``new_img`` (2, 6, 128, 256)
  (this frame's warped road and wide images), ``desire`` (this frame's pulse), ``traffic_convention``, ``action_t``
  and the ``state_*`` queues; outputs ``outputs`` and one ``next_state_*`` per queue, which the runtime writes back
  into the queue for the next frame. Queues: images t-5..t-1, desire pulses t-100..t-1, hidden states t-96..t-1.

Both layouts are the contract's ``profile.graph``: the vision heads, the policy heads, then ``action`` =
[lateral acceleration (curvature * v^2), longitudinal acceleration] read from our plan at ``action_t`` exactly as the
runtime's fallback (``get_action_from_model`` without an ``action`` output) reads it, with the plan's own speed at
t=0 (at least 1 m/s) in place of v_ego. The runtime divides ``action[0]`` by ``max(1, v_ego)^2``. Where the
profile's action head is an MDN (sunnypilot's parser reads it so), the two values are followed by two log-stds of 0
(a std of 1): the means are the same numbers, the spread is not a trained one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..contract.actions import MIN_SPEED_MPS
from ..contract.constants import HISTORY_BUFFER_LEN, IDX_N, PLAN_WIDTH, T_IDXS, TEMPORAL_SKIP, Plan
from ..contract.profiles import HeadKind, ModelSpec

MIN_STABLE_DELAY_S = 0.3  # below this delay the runtime scales the target from the one at 0.3 s
MIN_ACTION_T_S = 1e-3  # the runtime never asks for less; zeros (warm-up) must not divide by zero


def _interp(t: torch.Tensor, grid: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """np.interp(t, grid, values) for (B, 1) t and (B, N) values, clamped at both ends, in plain ONNX ops."""
    steps = (grid[1:] - grid[:-1]).unsqueeze(0)  # (1, N-1)
    weights = ((t - grid[:-1].unsqueeze(0)) / steps).clamp(0.0, 1.0)  # (B, N-1)
    return values[:, :1] + ((values[:, 1:] - values[:, :-1]) * weights).sum(dim=1, keepdim=True)


def _at_delay(t: torch.Tensor, grid: torch.Tensor, values: torch.Tensor, at_zero: torch.Tensor) -> torch.Tensor:
    """The plan value the runtime targets at delay t (below 0.3 s: scaled from the value at 0.3 s)."""
    stable = _interp(torch.full_like(t, MIN_STABLE_DELAY_S), grid, values)
    short = at_zero + (t / MIN_STABLE_DELAY_S) * (stable - at_zero)
    return torch.where(t < MIN_STABLE_DELAY_S, short, _interp(t, grid, values))


class PlanAction(nn.Module):
    """(B, 2) action from the plan means (B, 33, 15) and action_t (B, 2) = [lateral, longitudinal] delay."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("grid", torch.tensor(T_IDXS, dtype=torch.float32), persistent=False)

    def forward(self, plan_mu: torch.Tensor, action_t: torch.Tensor) -> torch.Tensor:
        lat_t = action_t[:, 0:1].clamp(min=MIN_ACTION_T_S)  # (B, 1)
        long_t = action_t[:, 1:2].clamp(min=MIN_ACTION_T_S)
        speeds = plan_mu[:, :, Plan.VELOCITY.start]  # (B, 33) forward speed
        accels = plan_mu[:, :, Plan.ACCELERATION.start]
        yaws = plan_mu[:, :, Plan.T_FROM_CURRENT_EULER.start + 2]
        yaw_rates = plan_mu[:, :, Plan.ORIENTATION_RATE.start + 2]
        v_now = speeds[:, :1]
        v_target = _at_delay(long_t, self.grid, speeds, v_now)
        accel = 2.0 * (v_target - v_now) / long_t - accels[:, :1]
        psi = _at_delay(lat_t, self.grid, yaws, torch.zeros_like(v_now))
        v = v_now.clamp(min=MIN_SPEED_MPS)
        curvature = 2.0 * psi / (v * lat_t) - yaw_rates[:, :1] / v
        return torch.cat([curvature * v * v, accel], dim=1)


class SupercomboGraph(nn.Module):
    """vision + policy + action, with the 24 past features given and the current one appended inside."""

    def __init__(self, vision: nn.Module, policy: nn.Module, graph: ModelSpec) -> None:
        super().__init__()
        self.vision, self.policy, self.action = vision, policy, PlanAction()
        vision_slices, policy_slices = vision.spec.output_slices(), policy.spec.output_slices()
        self.hidden = vision_slices["hidden_state"]
        self.vision_end = max(s.stop for k, s in vision_slices.items() if k != "pad")
        self.policy_end = max(s.stop for k, s in policy_slices.items() if k != "pad")
        plan = policy_slices["plan"]
        self.plan_mu = slice(plan.start, plan.start + IDX_N * PLAN_WIDTH)  # means first, then log-stds
        self.policy_names = [i.name for i in policy.spec.inputs]
        self.output_width = graph.output_width
        self.action_log_stds = graph.head("action").kind is HeadKind.MDN  # means, then log-stds of 0

    def run(self, img, big_img, past_features, desire_pulse, traffic_convention, action_t):
        """(outputs (B, W), hidden_state (B, 512))."""
        vision_out = self.vision(img, big_img)  # (B, 1576)
        hidden = vision_out[:, self.hidden]  # (B, 512)
        window = torch.cat([past_features, hidden.unsqueeze(1)], dim=1)  # (B, 25, 512)
        named = {"features_buffer": window, "desire_pulse": desire_pulse, "traffic_convention": traffic_convention}
        policy_out = self.policy(*(named[n] for n in self.policy_names))  # (B, 1000)
        plan_mu = policy_out[:, self.plan_mu].reshape(-1, IDX_N, PLAN_WIDTH)
        action = self.action(plan_mu, action_t)  # (B, 2)
        if self.action_log_stds:
            action = torch.cat([action, torch.zeros_like(action)], dim=1)  # (B, 4)
        out = torch.cat([vision_out[:, : self.vision_end], policy_out[:, : self.policy_end], action], dim=1)
        return out, hidden

    def forward(self, img, big_img, features_buffer, desire_pulse, traffic_convention, action_t):
        return self.run(img, big_img, features_buffer, desire_pulse, traffic_convention, action_t)[0]


class StatefulGraph(nn.Module):
    """The supercombo with its image, desire and feature queues inside (inputs and outputs: module docstring)."""

    def __init__(self, supercombo: SupercomboGraph) -> None:
        super().__init__()
        self.supercombo = supercombo

    def forward(self, new_img, desire, traffic_convention, action_t, state_road_q, state_big_img_q, state_desire_q,
                state_feat_q):
        img_q = torch.cat([state_road_q[1:], new_img[0:1]], dim=0)  # (5, 6, 128, 256): frames t-4 .. t
        big_img_q = torch.cat([state_big_img_q[1:], new_img[1:2]], dim=0)
        img = torch.cat([img_q[0:1], img_q[TEMPORAL_SKIP:TEMPORAL_SKIP + 1]], dim=1)  # (1, 12, 128, 256)
        big_img = torch.cat([big_img_q[0:1], big_img_q[TEMPORAL_SKIP:TEMPORAL_SKIP + 1]], dim=1)
        desire_q = torch.cat([state_desire_q[1:], desire.reshape(1, 1, -1)], dim=0)  # (100, 1, 8): t-99 .. t
        pulse = desire_q.reshape(HISTORY_BUFFER_LEN, TEMPORAL_SKIP, -1).amax(dim=1).unsqueeze(0)  # (1, 25, 8)
        feat = state_feat_q.shape[-1]
        past = state_feat_q.reshape(HISTORY_BUFFER_LEN - 1, TEMPORAL_SKIP, feat)[:, 0].unsqueeze(0)  # (1, 24, 512)
        out, hidden = self.supercombo.run(img, big_img, past, pulse, traffic_convention, action_t)
        feat_q = torch.cat([state_feat_q[1:], hidden.reshape(1, 1, feat)], dim=0)  # (96, 1, 512): t-95 .. t
        return out, img_q, big_img_q, desire_q, feat_q
