"""The expert ego driver: pure pursuit on a kinematic bicycle, IDM car following, lane changes and turns.

Frames: world NED (x north, y east, z down), heading 0 = north, positive yaw and curvature turn right. The
car's state is its rear-axle point; the device (camera) sits ``CAMERA_AHEAD_OF_REAR_AXLE_M`` ahead of it on
the body x axis, ``CAMERA_HEIGHT_M`` above the road. The route frame (``s`` along the route's reference line,
``d`` to its right) comes from :class:`RouteFrame`.

Signals, per frame (the labeller writes the meta head and desire from them):

* ``gas_pressed`` = commanded acceleration > ``GAS_PRESSED_MPS2`` (+0.3), ``brake_pressed`` = commanded
  acceleration < ``BRAKE_PRESSED_MPS2`` (-0.5): the expert stands in for a driver's pedals.
* ``engaged`` is True except during a seeded "driver takes over" event (gas, brake or steer); the
  ``gas_disengage`` / ``brake_disengage`` / ``steer_override`` flag is set at the event's first frame only.
* ``desire``: laneChangeLeft/Right from the first frame of the lateral move until the camera is within
  ``CENTRED_M`` of the new lane's centre; turnLeft/Right while a turn blinker is on and the speed is below
  ``LANE_CHANGE_MIN_SPEED_MPS`` (openpilot's rule); none otherwise. Blinkers: on 1-2 s before a lane change's
  move until it ends; for a turn from ``TURN_SIGNAL_M`` before the connector to its end.
"""

from __future__ import annotations

import math

import numpy as np

from ...contract.camera import CAMERA_HEIGHT_M
from ...contract.constants import Desire
from ..desire_rules import CENTRED_M, LANE_CHANGE_MIN_SPEED_MPS, TURN_SIGNAL_M
from ..scenarios import Scenario, sample_range
from .roads import DS_M, RoadNetwork
from .traffic import STOPPED_LEADER_MPS, Agents, JunctionGate, idm_accel, kinematic_stop, smoothstep5, stop_accel

WHEELBASE_M = 2.7
CAMERA_AHEAD_OF_REAR_AXLE_M = 1.5
FRONT_AHEAD_OF_REAR_AXLE_M = 3.5  # front bumper
REAR_BEHIND_REAR_AXLE_M = 1.0  # rear bumper
EGO_LENGTH_M = FRONT_AHEAD_OF_REAR_AXLE_M + REAR_BEHIND_REAR_AXLE_M
EGO_WIDTH_M = 1.85
GAS_PRESSED_MPS2 = 0.3
BRAKE_PRESSED_MPS2 = -0.5
MAX_STEER_RAD = 0.6
MAX_STEER_RATE_RADPS = 0.7
MAX_LAT_JERK_MPS3 = 5.0  # the steering rate is limited so lateral acceleration changes no faster than this
RECOVERY_BLEND_S = 0.6  # after a perturbation, pure pursuit takes the wheel back over this time
LAT_ACCEL_CAP_MPS2 = 3.2  # no steering command asks for more (corrections in curves included)
STEER_LAG_S = 0.08
IDM_MIN_GAP_M = 3.0
MAX_ACCEL_MPS2, MIN_ACCEL_MPS2 = 2.0, -8.0
MAX_JERK_UP_MPS3, MAX_JERK_DOWN_MPS3 = 3.0, 15.0


class RouteFrame:
    """Fast scalar queries on the route's uniform grid: position, heading, curvature, projection."""

    def __init__(self, network: RoadNetwork):
        route = network.route
        self.x, self.y, self.z = (route.centre_ned[:, i].copy() for i in range(3))
        self.h = np.unwrap(route.heading_rad)
        self.k = network.route_curvature(route.s_m)
        self.grade = route.grade_rad
        self.n = len(route.s_m)
        self.index = np.arange(self.n, dtype=np.float64)

    def at(self, arr: np.ndarray, s_m: float) -> float:
        f = min(max(s_m / DS_M, 0.0), self.n - 1.000001)
        i = int(f)
        return float(arr[i] + (arr[i + 1] - arr[i]) * (f - i))

    def heading(self, s_m: float) -> float:
        return self.at(self.h, s_m)

    def kappa(self, s_m) -> np.ndarray:
        return np.interp(np.asarray(s_m) / DS_M, self.index, self.k)

    def point(self, s_m: float, d_m: float) -> tuple[float, float]:
        h = self.heading(s_m)
        return self.at(self.x, s_m) - d_m * math.sin(h), self.at(self.y, s_m) + d_m * math.cos(h)

    def project(self, x: float, y: float, s_guess_m: float) -> tuple[float, float]:
        """(s, d) of a world point near the route (Newton steps from ``s_guess_m``)."""
        s = s_guess_m
        for _ in range(4):
            h = self.heading(s)
            ex, ey = x - self.at(self.x, s), y - self.at(self.y, s)
            along, d = ex * math.cos(h) + ey * math.sin(h), -ex * math.sin(h) + ey * math.cos(h)
            s += along / max(1.0 - self.at(self.k, s) * d, 0.2)
            if abs(along) < 1e-4:
                break
        return s, d


def event_times(rng: np.random.Generator, rate_per_min: float, duration_s: float, start_s: float = 3.0,
                regular: bool = False) -> list:
    """Seeded event times after ``start_s``, at least 4 s apart: a Poisson process, or (``regular``) intervals
    of 0.5-1.5 times the mean so that even short episodes see their share."""
    out, t = [], start_s
    mean_s = 60.0 / rate_per_min if rate_per_min > 0 else math.inf
    while math.isfinite(mean_s):
        t += max(4.0, mean_s * rng.uniform(0.5, 1.5) if regular else rng.exponential(mean_s))
        if t >= duration_s - 1.0:
            return out
        out.append(t)
    return out


class ExpertDriver:
    """Drives the route: lane keeping, speed and gap control, scheduled lane changes, the junction turn."""

    def __init__(self, scenario: Scenario, network: RoadNetwork, rng: np.random.Generator, duration_s: float,
                 dt_s: float, start_s_m: float, lane: int, speed_mps: float, v_cruise_mps: float):
        self.net, self.route, self.dt_s = network, RouteFrame(network), dt_s
        drv = scenario.driver
        self.v_cruise, self.headway = v_cruise_mps, sample_range(rng, drv.time_headway_s)
        self.lat_accel = sample_range(rng, drv.max_lat_accel_mps2)
        self.rng = rng
        h = self.route.heading(start_s_m)
        cx, cy = self.route.point(start_s_m, float(network.layout.forward_centre_m(lane)))
        self.x, self.y = cx - CAMERA_AHEAD_OF_REAR_AXLE_M * math.cos(h), cy - CAMERA_AHEAD_OF_REAR_AXLE_M * math.sin(h)
        self.yaw, self.v, self.a, self.steer = h, speed_mps, 0.0, 0.0
        self.s_cam, self.d_cam = start_s_m, float(network.layout.forward_centre_m(lane))
        self.s_rear = start_s_m - CAMERA_AHEAD_OF_REAR_AXLE_M
        self.lane = lane
        self.lateral_path = (0.0, 1.0, self.d_cam, self.d_cam)  # s0, s1, d0, d1: a quintic blend of offsets
        rate = sample_range(rng, scenario.desire.lane_changes_per_min)
        first = sample_range(rng, scenario.desire.first_lane_change_s)
        self.lc_times = [first] + event_times(rng, rate, duration_s, first) if rate > 0 else []
        self.lc_state, self.lc_dir, self.lc_until, self.lc_deadline = "idle", 0, 0.0, 0.0
        self.perturb = [(t, sample_range(rng, (1.0, 2.0)), sample_range(rng, (0.25, 0.6)) * rng.choice([-1, 1]))
                        for t in event_times(rng, sample_range(rng, drv.perturbations_per_min), duration_s, 2.0, True)]
        self.takeovers = [(t, str(rng.choice(["gas", "brake", "steer"])), sample_range(rng, (2.0, 4.0)))
                          for t in event_times(rng, drv.takeovers_per_min, duration_s, 8.0)]
        self.takeover = None  # (start, kind, duration, magnitude) of the running event
        self.log: dict[str, list] = {k: [] for k in (
            "pose", "v", "a", "desire", "left", "right", "gas", "brake", "engaged", "gas_dis", "brake_dis",
            "steer_ovr", "s_cam", "d_cam")}

    # --- the ego as an agent for traffic ---------------------------------------------------------------
    def agent(self) -> dict:
        centre_ahead_m = 0.5 * (FRONT_AHEAD_OF_REAR_AXLE_M - REAR_BEHIND_REAR_AXLE_M) - CAMERA_AHEAD_OF_REAR_AXLE_M
        return {"p": self.s_cam + centre_ahead_m, "d": self.d_cam, "d_target": self.lateral_path[3], "v": self.v,
                "a": self.a, "length": EGO_LENGTH_M, "width": EGO_WIDTH_M}

    # --- lateral ------------------------------------------------------------------------------------------
    def _d_target(self, s_m: float) -> float:
        s0, s1, d0, d1 = self.lateral_path
        return d0 + (d1 - d0) * float(smoothstep5((s_m - s0) / max(s1 - s0, 1e-3)))

    def _pure_pursuit(self) -> float:
        """Curvature command towards the planned path point one lookahead ahead of the rear axle."""
        look = min(max(0.6 * self.v + 2.5, 4.0), 25.0)
        s_t = self.s_rear + look
        tx, ty = self.route.point(s_t, self._d_target(s_t))
        ex, ey = tx - self.x, ty - self.y
        y_b = -ex * math.sin(self.yaw) + ey * math.cos(self.yaw)
        return 2.0 * y_b / max(ex * ex + ey * ey, 1.0)

    def _steer_command(self, t_s: float) -> float:
        """Road-wheel angle: pure pursuit, blended with an open-loop drift during a perturbation / steer takeover.

        A drift follows the road's curvature (feed-forward only, no feedback) plus a lateral-acceleration bump
        with a sin^2 envelope, so the car leaves the lane centre; the weight of the drift then fades over
        ``RECOVERY_BLEND_S`` and pure pursuit brings the car back (a correction in the data).
        """
        weight, lat_mps2 = 0.0, 0.0
        events = [(s, d, a) for s, d, a in self.perturb if self.lc_state == "idle" and self._turn_side() == 0]
        if self.takeover and self.takeover[1] == "steer":
            events.append((self.takeover[0], 1.0, self.takeover[3]))
        for start, dur, lat in events:
            u = (t_s - start) / dur
            if 0.0 <= u < 1.0:
                weight, lat_mps2 = 1.0, lat * math.sin(math.pi * u) ** 2
            elif 0.0 <= t_s - start - dur < RECOVERY_BLEND_S:
                weight = max(weight, 1.0 - (t_s - start - dur) / RECOVERY_BLEND_S)
        kappa = self._pure_pursuit()
        if weight > 0.0:
            k_road = float(self.route.kappa(self.s_rear))
            k_drift = k_road / max(1.0 - k_road * self.d_cam, 0.2) + lat_mps2 / max(self.v, 3.0) ** 2
            kappa = weight * k_drift + (1.0 - weight) * kappa
        k_max = LAT_ACCEL_CAP_MPS2 / max(self.v, 1.0) ** 2
        return math.atan(WHEELBASE_M * min(max(kappa, -k_max), k_max))

    # --- longitudinal -------------------------------------------------------------------------------------
    def _speed_accel(self) -> float:
        """Track the cruise speed, braking ahead of curves so lateral acceleration stays within the limit."""
        reach = self.v * self.v / 2.0 + 40.0
        ahead = np.arange(0.0, reach, 4.0)
        k = np.abs(self.route.kappa(self.s_cam + ahead))
        k = k / np.clip(1.0 - k * abs(self.lateral_path[3]), 0.2, None)
        v_curve = np.sqrt(self.lat_accel / np.maximum(k, 1e-6))
        need = (np.minimum(v_curve, self.v_cruise) ** 2 - self.v ** 2) / (2.0 * np.maximum(ahead - 2.0, 1.0))
        a_ff = float(np.min(np.where(ahead > 2.0, need, 0.0)))
        return min(1.5 * (min(v_curve[0], self.v_cruise) - self.v), 1.2 * a_ff if a_ff < 0 else np.inf)

    def _accel(self, agents: Agents, me: int, lead: int, gap_m: float, gate: JunctionGate | None) -> float:
        """Commanded acceleration: the minimum of speed/curve tracking, following the lead, junction stops."""
        a = self._speed_accel()
        if lead >= 0:
            dv = self.v - agents.v[lead]
            a = min(a, float(idm_accel(self.v, self.v_cruise, gap_m, dv, self.headway, IDM_MIN_GAP_M, 1.5, 2.0)))
            if agents.v[lead] < STOPPED_LEADER_MPS:
                a = min(a, float(kinematic_stop(self.v, gap_m - IDM_MIN_GAP_M - 0.5)))
        if gate is not None:
            g = float(gate.gaps[me])
            if math.isfinite(g):
                a = min(a, float(stop_accel(self.v, self.v_cruise, g, self.headway, IDM_MIN_GAP_M, 1.5, 2.0)))
        return a

    # --- manoeuvres ---------------------------------------------------------------------------------------
    def _target_lane_free(self, agents: Agents, me: int, d_t: float) -> bool:
        half = 0.5 * (EGO_WIDTH_M + agents.width) + 0.3
        lane = (np.abs(agents.d - d_t) < half) | (np.abs(agents.d_target - d_t) < half)
        lane &= agents.present & (agents.path == 0) & (agents.direction == 1)
        lane[me] = False
        dp = agents.p - agents.p[me]
        gap = np.abs(dp) - 0.5 * (EGO_LENGTH_M + agents.length)
        ahead_ok = gap >= max(10.0, 0.8 * self.v)
        behind_ok = (gap >= np.maximum(10.0, agents.v)) & (agents.v - self.v < 5.0)
        return bool(np.all(np.where(dp > 0, ahead_ok, behind_ok)[lane]))

    def _lane_change(self, t_s: float, agents: Agents, me: int) -> None:
        layout = self.net.layout
        if self.lc_state == "idle" and self.lc_times and t_s >= self.lc_times[0]:
            self.lc_times.pop(0)
            options = [k for k in (self.lane - 1, self.lane + 1) if 0 <= k < layout.n_forward]
            if options and self.v >= LANE_CHANGE_MIN_SPEED_MPS and self.takeover is None:
                self.lc_dir = int(self.rng.choice(options)) - self.lane
                self.lc_state, self.lc_deadline = "signal", t_s + 8.0
                self.lc_until = t_s + sample_range(self.rng, (1.0, 2.0))
        elif self.lc_state == "signal":
            d_t = float(layout.forward_centre_m(self.lane + self.lc_dir))
            if t_s >= self.lc_deadline:
                self.lc_state = "idle"
            elif t_s >= self.lc_until and self._target_lane_free(agents, me, d_t):
                length_m = max(self.v, 5.0) * sample_range(self.rng, (3.5, 5.0))
                self.lateral_path = (self.s_cam, self.s_cam + length_m, self.lateral_path[3], d_t)
                self.lc_state = "move"
        elif (self.lc_state == "move" and self.s_cam >= self.lateral_path[1]
              and abs(self.d_cam - self.lateral_path[3]) < CENTRED_M):
            self.lc_state, self.lane = "idle", self.lane + self.lc_dir

    def _turn_side(self) -> int:
        """-1 / +1 while the turn blinker is on (left / right), else 0."""
        j = self.net.junction
        if j is None or j.turn == "straight" or not (j.s_in_m - TURN_SIGNAL_M <= self.s_cam <= j.s_out_m + 2.0):
            return 0
        return -1 if j.turn == "left" else 1

    def _near_junction(self) -> bool:
        j = self.net.junction
        return j is not None and j.s_in_m - 100.0 < self.s_cam < j.s_out_m + 20.0

    def _start_takeover(self, t_s: float, gap_m: float) -> str | None:
        """Begin the next scheduled takeover if it is due and the situation allows it; returns its kind."""
        if self.takeover is not None or not self.takeovers or t_s < self.takeovers[0][0]:
            return None
        _, kind, dur = self.takeovers.pop(0)
        if self.lc_state != "idle" or self._near_junction() or self.v < 3.0:
            return None
        if kind == "gas" and gap_m < 3.0 * self.v + 20.0:
            kind = "brake"
        mag = {"gas": (0.8, 1.5), "brake": (1.5, 3.0), "steer": (0.6, 1.2)}[kind]
        sign = float(self.rng.choice([-1.0, 1.0])) if kind == "steer" else 1.0
        self.takeover = (t_s, kind, dur, sign * sample_range(self.rng, mag))
        return kind

    # --- one step -----------------------------------------------------------------------------------------
    def step(self, t_s: float, agents: Agents, me: int, gate: JunctionGate | None) -> None:
        """Decide, record frame ``t_s`` (state now, commands now) and advance by one step."""
        self._lane_change(t_s, agents, me)
        lead, gap = (x[me: me + 1] for x in agents.all_leaders())
        started = self._start_takeover(t_s, float(gap[0]))
        if self.takeover is not None and t_s >= self.takeover[0] + self.takeover[2]:
            self.takeover = None
        a_cmd = self._accel(agents, me, int(lead[0]), float(gap[0]), gate)
        if self.takeover is not None and t_s < self.takeover[0] + 1.5:
            kind, mag = self.takeover[1], self.takeover[3]
            if kind == "gas" and gap[0] > 2.0 * self.v + 10.0:
                a_cmd = max(a_cmd, mag)
            elif kind == "brake":
                a_cmd = min(a_cmd, -mag)
        a_cmd = min(max(a_cmd, MIN_ACCEL_MPS2), MAX_ACCEL_MPS2)
        a_cmd = self.a + min(max(a_cmd - self.a, -MAX_JERK_DOWN_MPS3 * self.dt_s), MAX_JERK_UP_MPS3 * self.dt_s)
        steer_cmd = self._steer_command(t_s)
        steer_cmd = min(max(steer_cmd, -MAX_STEER_RAD), MAX_STEER_RAD)
        rate = (steer_cmd - self.steer) * min(self.dt_s / STEER_LAG_S, 1.0) / self.dt_s
        rate_max = min(MAX_STEER_RATE_RADPS, WHEELBASE_M * MAX_LAT_JERK_MPS3 / max(self.v, 1.0) ** 2)
        self.steer += min(max(rate, -rate_max), rate_max) * self.dt_s
        v_new = max(self.v + a_cmd * self.dt_s, 0.0)  # a standstill holds (the brake is still pressed)
        self.a = (v_new - self.v) / self.dt_s
        self._record(started, a_cmd)
        self._integrate(v_new)

    def _record(self, started: str | None, a_cmd: float) -> None:
        log, turn = self.log, self._turn_side()
        h = self.yaw
        cx, cy = self.x + CAMERA_AHEAD_OF_REAR_AXLE_M * math.cos(h), self.y + CAMERA_AHEAD_OF_REAR_AXLE_M * math.sin(h)
        z = self.route.at(self.route.z, self.s_cam) - CAMERA_HEIGHT_M
        log["pose"].append((cx, cy, z, 0.0, self.route.at(self.route.grade, self.s_cam),
                            math.remainder(h, 2 * math.pi)))
        log["v"].append(self.v)
        log["a"].append(self.a)
        left = (self.lc_state != "idle" and self.lc_dir < 0) or turn < 0
        right = (self.lc_state != "idle" and self.lc_dir > 0) or turn > 0
        desire = Desire.NONE
        if self.lc_state == "move":
            desire = Desire.LANE_CHANGE_LEFT if self.lc_dir < 0 else Desire.LANE_CHANGE_RIGHT
        elif turn != 0 and self.v < LANE_CHANGE_MIN_SPEED_MPS:
            desire = Desire.TURN_LEFT if turn < 0 else Desire.TURN_RIGHT
        log["desire"].append(int(desire))
        log["left"].append(left)
        log["right"].append(right)
        log["gas"].append(a_cmd > GAS_PRESSED_MPS2)
        log["brake"].append(a_cmd < BRAKE_PRESSED_MPS2)
        log["engaged"].append(self.takeover is None)
        log["gas_dis"].append(started == "gas")
        log["brake_dis"].append(started == "brake")
        log["steer_ovr"].append(started == "steer")
        log["s_cam"].append(self.s_cam)
        log["d_cam"].append(self.d_cam)

    def _integrate(self, v_new: float) -> None:
        """Kinematic bicycle about the rear axle (midpoint rule), then re-project onto the route."""
        ds = 0.5 * (self.v + v_new) * self.dt_s
        dyaw = ds * math.tan(self.steer) / WHEELBASE_M
        self.x += ds * math.cos(self.yaw + 0.5 * dyaw)
        self.y += ds * math.sin(self.yaw + 0.5 * dyaw)
        self.yaw += dyaw
        self.v = v_new
        self.s_rear, _ = self.route.project(self.x, self.y, self.s_rear + ds)
        cx = self.x + CAMERA_AHEAD_OF_REAR_AXLE_M * math.cos(self.yaw)
        cy = self.y + CAMERA_AHEAD_OF_REAR_AXLE_M * math.sin(self.yaw)
        self.s_cam, self.d_cam = self.route.project(cx, cy, self.s_cam + ds)

    def arrays(self) -> dict[str, np.ndarray]:
        """The per-frame log as arrays (T, ...)."""
        return {k: np.asarray(v) for k, v in self.log.items()}
