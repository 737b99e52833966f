"""Other vehicles: IDM car following along lanes, MOBIL-like lane changes, scripted leads, junction rules.

A vehicle lives on a *path* (a :class:`RoadSurface`: the ego's route or a crossing road) in a direction
(+1 along increasing ``s``, -1 against it) at lateral offset ``d`` (right of the path's reference line, see
``world.py``). ``s`` is the centre of the vehicle's box. Following and junction logic work in *progress*
coordinates ``p = direction * s``, so "ahead" is always larger ``p``. The ego joins as one more agent (the
last row of :class:`Agents`) so traffic follows it and yields to it. Speeds are along the lane; ``s``
advances by ``v / (1 - kappa d)`` per second so vehicles on inner and outer lanes of a curve move at their
true speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from ..scenarios import LeadProfile, sample_range
from .agents import LATERAL_MARGIN_M, Agents
from .junction import JunctionGate
from .world import RoadSurface

LANE_CHANGE_S = (3.0, 5.0)  # duration of a lateral move between lane centres
SAFE_DECEL_MPS2 = 3.0  # MOBIL safety: the new follower must not have to brake harder than this
TRAFFIC_LAT_ACCEL_MPS2 = 2.0  # curve speed of other vehicles
STOPPED_LEADER_MPS = 0.3  # behind a leader this slow, a vehicle finishes its stop kinematically


class Behaviour(IntEnum):
    NORMAL = 0  # IDM + lane changes
    LEAD = 1  # the scripted lead (LeadScript), never changes lanes
    HOLD = 2  # waits where it stands (a car queued at a stop sign)


@dataclass
class VehicleSpec:
    path: int
    direction: int
    s_m: float
    d_m: float
    speed_mps: float
    size_m: tuple[float, float, float]  # length, width, height
    rgb: tuple[int, int, int]
    v0_mps: float
    headway_s: float = 1.5
    min_gap_m: float = 2.5
    max_accel_mps2: float = 1.5
    comfort_decel_mps2: float = 2.0
    politeness: float = 0.3
    lc_threshold_mps2: float = 0.3
    behaviour: Behaviour = Behaviour.NORMAL
    lanes_m: tuple[float, ...] = ()  # lane centres it may change to (same direction), empty = none


def idm_accel(v, v0, gap, dv, headway, s0, a_max, b):
    """Intelligent Driver Model acceleration (m/s^2); ``gap`` may be inf (free road), ``dv`` = v - v_leader."""
    v = np.asarray(v, dtype=np.float64)
    s_star = s0 + np.maximum(0.0, v * headway + v * dv / (2.0 * np.sqrt(a_max * b)))
    inter = np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.1)) ** 2, 0.0)
    return a_max * (1.0 - (v / np.maximum(v0, 0.1)) ** 4 - inter)


def smoothstep5(u):
    """Quintic 0..1 ramp with zero slope and curvature at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * u * (10.0 - 15.0 * u + 6.0 * u * u)


class LeadScript:
    """Speed targets of the scripted lead: cruise (slowly varying), brakes (hard events), stop_and_go."""

    def __init__(self, behaviour: str, profile: LeadProfile, v_cruise_mps: float, rng: np.random.Generator):
        self.behaviour = behaviour
        self.v_cruise_mps = v_cruise_mps
        self.p = profile
        self.rng = rng
        self.amp = sample_range(rng, profile.speed_variation)
        self.period_s = sample_range(rng, (15.0, 40.0))
        self.phase_rad = sample_range(rng, (0.0, 2.0 * math.pi))
        self.next_event_s = sample_range(rng, profile.brake_interval_s if behaviour == "brakes"
                                         else profile.first_stop_after_s)
        self.event_end_s = -1.0
        self.decel_mps2 = 0.0
        self.mode = "go"  # stop_and_go: go -> stopping -> dwell -> go

    def control(self, t_s: float, v_mps: float) -> tuple[float, float]:
        """(desired speed, upper bound on the acceleration) at time ``t_s``."""
        v0 = self.v_cruise_mps * (1.0 + self.amp * math.sin(2 * math.pi * t_s / self.period_s + self.phase_rad))
        if self.behaviour == "brakes":
            if t_s >= self.next_event_s:
                self.decel_mps2 = sample_range(self.rng, self.p.brake_decel_mps2)
                self.event_end_s = t_s + sample_range(self.rng, self.p.brake_duration_s)
                self.next_event_s = self.event_end_s + sample_range(self.rng, self.p.brake_interval_s)
            return v0, (-self.decel_mps2 if t_s < self.event_end_s else math.inf)
        if self.behaviour == "stop_and_go":
            return self._stop_and_go(t_s, v_mps, v0)
        return v0, math.inf

    def _stop_and_go(self, t_s: float, v_mps: float, v0: float) -> tuple[float, float]:
        if self.mode == "go" and t_s >= self.next_event_s:
            self.mode, self.decel_mps2 = "stopping", sample_range(self.rng, self.p.stop_decel_mps2)
        if self.mode == "stopping" and v_mps < 0.01:
            self.mode, self.event_end_s = "dwell", t_s + sample_range(self.rng, self.p.stop_dwell_s)
        if self.mode == "dwell" and t_s >= self.event_end_s:
            self.mode, self.next_event_s = "go", t_s + sample_range(self.rng, self.p.go_duration_s)
        if self.mode == "stopping":
            return v0, -min(self.decel_mps2, max(v_mps, 0.3) * 2.0)
        return v0, (-5.0 if self.mode == "dwell" else math.inf)


@dataclass
class TrafficPath:
    """A road traffic drives on and its reference line's curvature at the road's samples."""

    surface: RoadSurface
    curvature_inv_m: np.ndarray  # (N,) at surface.s_m

    def kappa(self, s_m) -> np.ndarray:
        return np.interp(s_m, self.surface.s_m, self.curvature_inv_m)


def kinematic_stop(v, gap_m):
    """Constant deceleration that stands still after ``gap_m``; inf (no constraint) unless it is needed: close
    in, and either firm (< -0.5 m/s^2) or within a metre. It finishes an IDM approach, which never ends."""
    gap_m = np.asarray(gap_m, dtype=np.float64)
    a_kin = -np.asarray(v, dtype=np.float64) ** 2 / (2.0 * np.maximum(gap_m, 1e-3))
    return np.where((gap_m < 8.0) & ((a_kin < -0.5) | (gap_m < 1.0)), a_kin, np.inf)


def stop_accel(v, v0, gap_m, headway, s0, a_max, b):
    """Acceleration to stand still ``gap_m`` ahead: IDM towards an obstacle placed 0.5 m beyond that point
    (its asymptotic approach never quite ends), finished by a kinematic stop at the point itself."""
    a_idm = idm_accel(v, v0, gap_m + s0 + 0.5, v, headway, s0, a_max, b)
    return np.minimum(a_idm, kinematic_stop(v, gap_m))


class Traffic:
    """Vehicles as arrays (M,) stepped together; the history of every step is kept for the truth."""

    PREVIEW_M = np.array([0.0, 10.0, 20.0, 40.0, 70.0])

    def __init__(self, specs: list[VehicleSpec], paths: list[TrafficPath], n_frames: int, dt_s: float,
                 rng: np.random.Generator, lead_index: int = -1, lead_script: LeadScript | None = None,
                 side: int = 1, junction_span_m: tuple[float, float] | None = None):
        self.paths, self.dt_s, self.side, self.rng = paths, dt_s, side, rng
        self.junction_span_m = junction_span_m  # (s_in, s_out) of the route's junction: no lane changes near it
        self.specs = specs
        def col(name: str, dtype=np.float64) -> np.ndarray:
            return np.array([getattr(x, name) for x in specs], dtype=dtype)

        self.path, self.direction = col("path", np.int64), col("direction", np.int64)
        self.s, self.d, self.v = col("s_m"), col("d_m"), col("speed_mps")
        self.a = np.zeros(len(specs))
        self.size_m = np.array([x.size_m for x in specs], dtype=np.float64).reshape(-1, 3)  # (M, 3)
        self.v0, self.headway, self.s0 = col("v0_mps"), col("headway_s"), col("min_gap_m")
        self.a_max, self.b = col("max_accel_mps2"), col("comfort_decel_mps2")
        self.behaviour = col("behaviour", np.int64)
        self.path_length_m = np.array([p.surface.length_m for p in paths])[self.path]  # (M,)
        self.present = (self.s >= 0.0) & (self.s <= self.path_length_m)
        self.lc = np.full((len(specs), 4), np.nan)  # t0, d0, d1, duration of an active lane change
        self.lead_index, self.lead_script = lead_index, lead_script
        self.hist = {k: np.zeros((n_frames, len(specs))) for k in ("s", "d", "v", "a")}
        self.hist["present"] = np.zeros((n_frames, len(specs)), bool)
        self.hist["pose"] = np.zeros((n_frames, len(specs), 6))

    @property
    def n(self) -> int:
        return len(self.specs)

    def d_target(self) -> np.ndarray:
        return np.where(np.isnan(self.lc[:, 2]), self.d, self.lc[:, 2])

    def agents(self, ego: dict | None = None) -> Agents:
        """The traffic plus, when given, the ego (path 0, direction +1) as the last agent."""
        cols = [self.path, self.direction, self.direction * self.s, self.d, self.d_target(), self.v, self.a,
                self.size_m[:, 0], self.size_m[:, 1], self.present]
        if ego is not None:
            extra = (0, 1, ego["p"], ego["d"], ego["d_target"], ego["v"], ego["a"], ego["length"], ego["width"], True)
            cols = [np.concatenate([c, np.array([x], dtype=c.dtype)]) for c, x in zip(cols, extra)]
        return Agents(*cols)

    def poses(self, t_s: float) -> np.ndarray:
        """(M, 6) pose of every vehicle now: the centre of its box's bottom face on the road, yaw along the lane
        plus the slip of a lane change (from the change's own lateral rate, so nothing looks ahead), pitch = the
        grade in its direction of travel."""
        pose = np.zeros((self.n, 6))
        active = ~np.isnan(self.lc[:, 0])
        u = np.clip((t_s - np.where(active, self.lc[:, 0], t_s)) / np.where(active, self.lc[:, 3], 1.0), 0.0, 1.0)
        d_rate = np.where(active, (self.lc[:, 2] - self.lc[:, 1]) * 30.0 * u * u * (1.0 - u) ** 2
                          / np.where(active, self.lc[:, 3], 1.0), 0.0)  # d/dt of smoothstep5
        for q, path in enumerate(self.paths):
            rows = np.flatnonzero(self.path == q)
            if len(rows) == 0:
                continue
            road, s, d, direction = path.surface, self.s[rows], self.d[rows], self.direction[rows]
            pose[rows, :3] = road.point_at(s, d)
            heading = np.interp(s, road.s_m, road.heading_unwrapped_rad)
            slip = np.arctan2(d_rate[rows], np.maximum(self.v[rows], 0.5))
            yaw = heading + np.where(direction < 0, math.pi, 0.0) + direction * slip
            pose[rows, 4] = direction * np.interp(s, road.s_m, road.grade_rad)
            pose[rows, 5] = np.remainder(yaw + math.pi, 2 * math.pi) - math.pi
        return pose

    def _kappa_ref(self, s_m: np.ndarray) -> np.ndarray:
        """(M, ...) curvature of each vehicle's path reference line at arc lengths ``s_m`` (M, ...)."""
        k = np.zeros_like(s_m)
        for q, path in enumerate(self.paths):
            rows = self.path == q
            k[rows] = path.kappa(s_m[rows])
        return k

    def _curve_v0(self) -> np.ndarray:
        """Desired speeds limited by the curvature ahead (comfortable braking to each preview point)."""
        s_q = self.s[:, None] + self.direction[:, None] * self.PREVIEW_M[None, :]  # (M, Q)
        k_ref = self._kappa_ref(s_q)
        self.kappa_ref_now = k_ref[:, 0]  # PREVIEW_M[0] == 0: under each vehicle
        k_lane = np.abs(k_ref / np.clip(1.0 - k_ref * self.d[:, None], 0.2, None))
        v_allow = np.sqrt(TRAFFIC_LAT_ACCEL_MPS2 / np.maximum(k_lane, 1e-6) + 2.0 * self.b[:, None] * self.PREVIEW_M)
        return np.minimum(self.v0, v_allow.min(axis=1))

    def _accel(self, t_s: float, agents: Agents, gate: JunctionGate | None) -> np.ndarray:
        lead, gap = (x[: self.n] for x in agents.all_leaders())
        self.leader_gap_m = gap
        dv = np.where(lead >= 0, self.v - agents.v[np.maximum(lead, 0)], 0.0)
        v0 = self._curve_v0()
        cap = np.full(self.n, np.inf)
        if self.lead_script is not None and self.lead_index >= 0:
            L = self.lead_index
            v_l, cap[L] = self.lead_script.control(t_s, self.v[L])
            v0[L] = min(v0[L], v_l)
        acc = idm_accel(self.v, v0, gap, dv, self.headway, self.s0, self.a_max, self.b)
        standing = (lead >= 0) & (agents.v[np.maximum(lead, 0)] < STOPPED_LEADER_MPS)
        acc = np.where(standing, np.minimum(acc, kinematic_stop(self.v, gap - self.s0 - 0.5)), acc)
        if gate is not None:
            g = gate.gaps[: self.n]
            r = np.isfinite(g)
            acc[r] = np.minimum(acc[r], stop_accel(self.v[r], v0[r], g[r], self.headway[r], self.s0[r],
                                                   self.a_max[r], self.b[r]))
        acc = np.clip(np.minimum(acc, cap), -9.0, self.a_max)
        return np.where(self.behaviour == Behaviour.HOLD, 0.0, acc)

    def step(self, k: int, t_s: float, agents: Agents, gate: JunctionGate | None = None) -> None:
        """Record frame ``k`` and advance every vehicle by one step (``agents`` includes the ego)."""
        acc = self._accel(t_s, agents, gate)
        v_new = np.maximum(self.v + acc * self.dt_s, 0.0)
        acc = (v_new - self.v) / self.dt_s
        for name, value in (("s", self.s), ("d", self.d), ("v", self.v), ("a", acc), ("present", self.present),
                            ("pose", self.poses(t_s))):
            self.hist[name][k] = value
        if k % 5 == 0:
            self._lane_changes(k, t_s, agents, acc)
        lane_ds = 0.5 * (self.v + v_new) * self.dt_s  # along the lane; s (reference line) moves 1/(1 - k d) times that
        self.s = self.s + self.direction * lane_ds / np.clip(1.0 - self.kappa_ref_now * self.d, 0.2, None)
        self.v, self.a = v_new, acc
        active = ~np.isnan(self.lc[:, 0])
        u = (t_s + self.dt_s - self.lc[:, 0]) / self.lc[:, 3]
        self.d = np.where(active, self.lc[:, 1] + (self.lc[:, 2] - self.lc[:, 1]) * smoothstep5(u), self.d)
        self.lc[active & (u >= 1.0)] = np.nan
        self.present &= (self.s >= 0.0) & (self.s <= self.path_length_m)

    def _lane_changes(self, k: int, t_s: float, agents: Agents, acc: np.ndarray) -> None:
        """MOBIL-like decisions: each vehicle reconsiders about once a second (staggered)."""
        for i in range(self.n):
            spec = self.specs[i]
            if (k // 5 + i) % 4 or spec.behaviour != Behaviour.NORMAL or len(spec.lanes_m) < 2:
                continue
            if not self.present[i] or not np.isnan(self.lc[i, 0]) or self._near_junction(i):
                continue
            if self.leader_gap_m[i] > 4.0 * self.v[i] + 30.0 and (k // 20 + i) % 5:
                continue  # nobody slows it down: look for a lane to the outside only now and then
            best, best_gain = None, spec.lc_threshold_mps2
            for d_t in spec.lanes_m:
                if abs(abs(d_t - self.d[i]) - abs(spec.lanes_m[1] - spec.lanes_m[0])) > 0.3:
                    continue  # only the adjacent lanes
                gain = self._mobil_gain(i, d_t, agents, acc[i])
                gain += 0.1 if (d_t - self.d[i]) * self.side * self.direction[i] > 0 else -0.1  # keep to the outside
                if gain > best_gain:
                    best, best_gain = d_t, gain
            if best is not None:
                self.lc[i] = (t_s, self.d[i], best, sample_range(self.rng, LANE_CHANGE_S))

    def _near_junction(self, i: int) -> bool:
        span = self.junction_span_m
        return span is not None and self.path[i] == 0 and span[0] - 120.0 < self.s[i] < span[1] + 30.0

    def _mobil_gain(self, i: int, d_t: float, agents: Agents, acc_i: float) -> float:
        """Own advantage plus the politeness-weighted change of the new follower; -inf if unsafe."""
        lead, gap = agents.leaders(np.array([i]), d_probe=np.array([d_t]))
        if gap[0] < 4.0:
            return -math.inf
        dv = self.v[i] - agents.v[lead[0]] if lead[0] >= 0 else 0.0
        a_new = float(idm_accel(self.v[i], self.v0[i], gap[0], dv, self.headway[i], self.s0[i], self.a_max[i],
                                self.b[i]))
        half = 0.5 * (agents.width[i] + agents.width) + LATERAL_MARGIN_M
        behind = (agents.path == agents.path[i]) & (agents.direction == agents.direction[i]) & agents.present
        behind &= ((np.abs(agents.d - d_t) < half) | (np.abs(agents.d_target - d_t) < half)) & (agents.p < agents.p[i])
        if not behind.any():
            return a_new - acc_i
        j = int(np.flatnonzero(behind)[np.argmax(agents.p[behind])])
        gap_f = agents.p[i] - agents.p[j] - 0.5 * (agents.length[i] + agents.length[j])
        params = ((self.v0[j], self.headway[j], self.s0[j], self.a_max[j], self.b[j]) if j < self.n
                  else (agents.v[j] + 5.0, 1.5, 2.5, 1.5, 2.0))  # the ego: a generic driver
        a_f_new = float(idm_accel(agents.v[j], params[0], gap_f, agents.v[j] - self.v[i], *params[1:]))
        if gap_f < max(4.0, 0.6 * agents.v[j]) or a_f_new < -SAFE_DECEL_MPS2:
            return -math.inf
        lead_f, gap_f_old = agents.leaders(np.array([j]))
        dv_old = agents.v[j] - agents.v[lead_f[0]] if lead_f[0] >= 0 else 0.0
        a_f_old = float(idm_accel(agents.v[j], params[0], gap_f_old[0], dv_old, *params[1:]))
        return a_new - acc_i + self.specs[i].politeness * (a_f_new - a_f_old)
