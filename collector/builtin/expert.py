"""The expert ego driver: pure pursuit, IDM car following, lane changes and turns, sent as drive commands.

The expert is privileged: it reads the world (the route, the other vehicles, the junction gate) and, every 50 ms,
returns a :class:`~.vehicle.DriveCommand` - the curvature pure pursuit asks for (capped at
``LAT_ACCEL_CAP_MPS2``) and an acceleration - that :class:`~.vehicle.Vehicle` carries out, exactly as any other
driver's commands are. Frames: world NED (x north, y east, z down), heading 0 = north, positive yaw and curvature
turn right; the route frame (``s`` along the route's reference line, ``d`` to its right) is :class:`RouteFrame`.

Signals, per frame (the labeller writes the meta head and desire from them):

* ``gas_pressed`` / ``brake_pressed`` come from the acceleration the car's actuators deliver (see ``vehicle.py``).
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

from ...contract.actions import pursuit_lookahead_m
from ...contract.constants import Desire
from ..desire_rules import CENTRED_M, LANE_CHANGE_MIN_SPEED_MPS, TURN_SIGNAL_M
from ..scenarios import Scenario, sample_range
from .agents import Agents
from .human import HumanFactors
from .junction import JunctionGate
from .roads import RoadNetwork
from .traffic import STOPPED_LEADER_MPS, idm_accel, kinematic_stop, smoothstep5, stop_accel
from .vehicle import DriveCommand, DriverSignals, Vehicle

RECOVERY_BLEND_S = 0.6  # after a perturbation, pure pursuit takes the wheel back over this time
LAT_ACCEL_CAP_MPS2 = 3.2  # no steering command asks for more (corrections in curves included)
IDM_MIN_GAP_M = 3.0
SLOT_IN_RANGE_M = 40.0  # while signalling, a car this close ahead in the target lane is let pass
RAMP_FROM = 0.8  # late_braking: braking for a curve or turn starts at this share of the driver's onset


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


def late_braking(need_mps2: float, onset_mps2: float) -> float:
    """The braking (m/s^2, negative; inf: none) a person applies for a curve or turn ahead that needs the constant
    deceleration ``need_mps2`` from here: none while it needs less than ``RAMP_FROM`` of ``onset_mps2``, then 1.2
    times the need, weighted from 0 to 1 as the need grows to the onset. The need stops growing once the braking
    matches it, at about 0.97 times the onset, so the car cruises towards a turn and brakes in the last stretch -
    not, as braking at the need from the first moment would, gently from 100 m out and more, where a camera can
    hardly see why."""
    if need_mps2 >= 0.0:
        return math.inf
    start = RAMP_FROM * onset_mps2
    weight = min(max((-need_mps2 - start) / (onset_mps2 - start), 0.0), 1.0)
    return 1.2 * need_mps2 * weight if weight > 0.0 else math.inf


class ExpertDriver:
    """Drives the route: lane keeping, speed and gap control, scheduled lane changes, the junction turn.

    ``lane_change_requests`` ``[(t_s, direction)]`` (-1 left, +1 right, 0 either) replace the scenario's own
    schedule of lane changes (the road tests ask for specific ones); the random draws happen either way, so the
    rest of the episode is the same.
    """

    def __init__(self, scenario: Scenario, network: RoadNetwork, rng: np.random.Generator, duration_s: float,
                 car: Vehicle, lane: int, v_cruise_mps: float,
                 lane_change_requests: list[tuple[float, int]] | None = None):
        self.net, self.route, self.car = network, car.route, car
        drv = scenario.driver
        self.v_cruise, self.headway = v_cruise_mps, sample_range(rng, drv.time_headway_s)
        self.lat_accel = sample_range(rng, drv.max_lat_accel_mps2)
        # a child stream: the draws below (lane changes, perturbations, takeovers, human factors) stay the same
        self.brake_onset = sample_range(rng.spawn(1)[0], drv.brake_onset_mps2)
        self.rng = rng
        self.lane = lane
        self.lateral_path = (0.0, 1.0, car.d_cam, car.d_cam)  # s0, s1, d0, d1: a quintic blend of offsets
        rate = sample_range(rng, scenario.desire.lane_changes_per_min)
        first = sample_range(rng, scenario.desire.first_lane_change_s)
        scheduled = [first] + event_times(rng, rate, duration_s, first) if rate > 0 else []
        self.lc_requests = [(t, 0) for t in scheduled] if lane_change_requests is None else \
            sorted((float(t), int(d)) for t, d in lane_change_requests)
        self.lc_state, self.lc_dir, self.lc_until, self.lc_deadline = "idle", 0, 0.0, 0.0
        self.perturb = [(t, sample_range(rng, (1.0, 2.0)), sample_range(rng, (0.25, 0.6)) * rng.choice([-1, 1]))
                        for t in event_times(rng, sample_range(rng, drv.perturbations_per_min), duration_s, 2.0, True)]
        self.takeovers = [(t, str(rng.choice(["gas", "brake", "steer"])), sample_range(rng, (2.0, 4.0)))
                          for t in event_times(rng, drv.takeovers_per_min, duration_s, 8.0)]
        self.takeover = None  # (start, kind, duration, magnitude) of the running event
        self.human = HumanFactors(drv, np.random.default_rng(int(rng.integers(2**63))), duration_s, car.dt_s,
                                  v_cruise_mps, network.layout.lane_width_m, car.params.width_m, event_times)
        self.perturb = [(t, dur, lat * self.human.perturbation_scale()) for t, dur, lat in self.perturb]
        self.t_s, self.wander_m = 0.0, self.human.wander_m

    # --- the car's state ----------------------------------------------------------------------------------
    @property
    def v(self) -> float:
        return self.car.v

    @property
    def s_cam(self) -> float:
        return self.car.s_cam

    @property
    def d_cam(self) -> float:
        return self.car.d_cam

    @property
    def v_cruise_now(self) -> float:
        """The cruise speed the driver aims for now (it changes now and then)."""
        return self.human.cruise_mps(self.t_s)

    # --- lateral ------------------------------------------------------------------------------------------
    def _d_target(self, s_m: float) -> float:
        s0, s1, d0, d1 = self.lateral_path
        return d0 + (d1 - d0) * float(smoothstep5((s_m - s0) / max(s1 - s0, 1e-3))) + self.wander_m

    def _pure_pursuit(self) -> float:
        """Curvature command towards the planned path point one lookahead ahead of the rear axle."""
        car = self.car
        look = float(pursuit_lookahead_m(car.v))
        s_t = car.s_rear + look
        tx, ty = self.route.point(s_t, self._d_target(s_t))
        ex, ey = tx - car.x, ty - car.y
        y_b = -ex * math.sin(car.yaw) + ey * math.cos(car.yaw)
        return 2.0 * y_b / max(ex * ex + ey * ey, 1.0)

    def _curvature_command(self, t_s: float) -> float:
        """Curvature (1/m): pure pursuit, blended with an open-loop drift during a perturbation / steer takeover.

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
            k_road = float(self.route.kappa(self.car.s_rear))
            k_drift = k_road / max(1.0 - k_road * self.d_cam, 0.2) + lat_mps2 / max(self.v, 3.0) ** 2
            kappa = weight * k_drift + (1.0 - weight) * kappa
        k_max = LAT_ACCEL_CAP_MPS2 / max(self.v, 1.0) ** 2
        return min(max(kappa, -k_max), k_max)

    # --- longitudinal -------------------------------------------------------------------------------------
    def _speed_accel(self) -> float:
        """Track the cruise speed, braking ahead of curves so lateral acceleration stays within the limit (late,
        like a person: :func:`late_braking`)."""
        reach = self.v * self.v / 2.0 + 40.0
        ahead = np.arange(0.0, reach, 4.0)
        k = np.abs(self.route.kappa(self.s_cam + ahead))
        k = k / np.clip(1.0 - k * abs(self.lateral_path[3]), 0.2, None)
        v_curve = np.sqrt(self.lat_accel / np.maximum(k, 1e-6))
        # the curves ahead alone (the cruise speed is the proportional term's: counting it here braked hard at
        # the first look-ahead point whenever the car was a little above it)
        need = (np.minimum(v_curve, self.v) ** 2 - self.v ** 2) / (2.0 * np.maximum(ahead - 2.0, 1.0))
        a_ff = float(np.min(np.where(ahead > 2.0, need, 0.0)))
        return min(1.5 * (min(v_curve[0], self.v_cruise_now) - self.v), late_braking(a_ff, self.brake_onset))

    def desired_accel(self, agents: Agents, me: int, gate: JunctionGate | None) -> float:
        """The acceleration the expert would ask for now (speed, curves, the lead, junction stops); no side effects."""
        lead, gap = (x[me: me + 1] for x in agents.all_leaders())
        return self._accel(agents, me, int(lead[0]), float(gap[0]), gate)

    def _accel(self, agents: Agents, me: int, lead: int, gap_m: float, gate: JunctionGate | None) -> float:
        """Commanded acceleration: the minimum of speed/curve tracking, following the lead, junction stops."""
        a = self._speed_accel()
        if lead >= 0:
            dv = self.v - agents.v[lead]
            a = min(a, float(idm_accel(self.v, self.v_cruise_now, gap_m, dv, self.headway, IDM_MIN_GAP_M, 1.5, 2.0)))
            if agents.v[lead] < STOPPED_LEADER_MPS:
                a = min(a, float(kinematic_stop(self.v, gap_m - IDM_MIN_GAP_M - 0.5)))
        if gate is not None:
            g = float(gate.gaps[me])
            if math.isfinite(g):
                a = min(a, float(stop_accel(self.v, self.v_cruise_now, g, self.headway, IDM_MIN_GAP_M, 1.5, 2.0)))
        if self.lc_state == "signal":  # a car beside and ahead in the target lane: drop back to slot in behind it
            blocker, gap = self._blocker_ahead(agents, me)
            if blocker >= 0:
                dv = self.v - agents.v[blocker]
                a = min(a, float(idm_accel(self.v, self.v_cruise_now, gap, dv, self.headway, IDM_MIN_GAP_M, 1.5, 2.0)))
        return a

    def _blocker_ahead(self, agents: Agents, me: int) -> tuple[int, float]:
        """(index, gap m) of the nearest vehicle ahead within ``SLOT_IN_RANGE_M`` in the lane a signalled lane change
        goes to, or (-1, inf)."""
        d_t = float(self.net.layout.forward_centre_m(self.lane + self.lc_dir))
        half = 0.5 * (self.car.params.width_m + agents.width) + 0.3
        lane = ((np.abs(agents.d - d_t) < half) | (np.abs(agents.d_target - d_t) < half)) & agents.present
        lane &= (agents.path == 0) & (agents.direction == 1)
        lane[me] = False
        gap = agents.p - agents.p[me] - 0.5 * (self.car.params.length_m + agents.length)
        ahead = lane & (gap > -0.5 * (self.car.params.length_m + agents.length)) & (gap < SLOT_IN_RANGE_M)
        if not ahead.any():
            return -1, math.inf
        i = int(np.flatnonzero(ahead)[np.argmin(gap[ahead])])
        return i, max(float(gap[i]), 0.1)

    # --- manoeuvres ---------------------------------------------------------------------------------------
    def _target_lane_free(self, agents: Agents, me: int, d_t: float) -> bool:
        half = 0.5 * (self.car.params.width_m + agents.width) + 0.3
        lane = (np.abs(agents.d - d_t) < half) | (np.abs(agents.d_target - d_t) < half)
        lane &= agents.present & (agents.path == 0) & (agents.direction == 1)
        lane[me] = False
        dp = agents.p - agents.p[me]
        gap = np.abs(dp) - 0.5 * (self.car.params.length_m + agents.length)
        ahead_ok = gap >= max(10.0, 0.8 * self.v)
        closing = np.maximum(agents.v - self.v, 0.0)  # how fast a car behind closes in
        behind_ok = (gap >= np.maximum(8.0, 0.5 * agents.v + 3.0 * closing)) & (closing < 5.0)
        return bool(np.all(np.where(dp > 0, ahead_ok, behind_ok)[lane]))

    def _lane_change(self, t_s: float, agents: Agents, me: int) -> None:
        layout = self.net.layout
        if self.lc_state == "idle" and self.lc_requests and t_s >= self.lc_requests[0][0]:
            _, wanted = self.lc_requests.pop(0)
            options = [k for k in (self.lane - 1, self.lane + 1) if 0 <= k < layout.n_forward]
            if wanted:
                options = [k for k in options if k == self.lane + wanted]
            if options and self.v >= LANE_CHANGE_MIN_SPEED_MPS and self.takeover is None:
                self.lc_dir = (int(self.rng.choice(options)) if not wanted else options[0]) - self.lane
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
    def command(self, t_s: float, agents: Agents, me: int, gate: JunctionGate | None) -> DriveCommand:
        """Decide this frame's command (``agents`` row ``me`` is the ego) and the driver's signals."""
        self.t_s = t_s
        wander = self.human.step_wander()
        self.wander_m = wander if self.lc_state == "idle" and self._turn_side() == 0 and not self._near_junction() \
            else 0.0
        self._lane_change(t_s, agents, me)
        lead, gap = (x[me: me + 1] for x in agents.all_leaders())
        started = self._start_takeover(t_s, float(gap[0]))
        if self.takeover is not None and t_s >= self.takeover[0] + self.takeover[2]:
            self.takeover = None
        a_cmd = self.human.react(self._accel(agents, me, int(lead[0]), float(gap[0]), gate))
        if self.takeover is not None and t_s < self.takeover[0] + 1.5:
            kind, mag = self.takeover[1], self.takeover[3]
            if kind == "gas" and gap[0] > 2.0 * self.v + 10.0:
                a_cmd = max(a_cmd, mag)
            elif kind == "brake":
                a_cmd = min(a_cmd, -mag)
        return DriveCommand(self._curvature_command(t_s), a_cmd, self._signals(started),
                            d_target_m=self.lateral_path[3])

    def _signals(self, started: str | None) -> DriverSignals:
        turn = self._turn_side()
        desire = Desire.NONE
        if self.lc_state == "move":
            desire = Desire.LANE_CHANGE_LEFT if self.lc_dir < 0 else Desire.LANE_CHANGE_RIGHT
        elif turn != 0 and self.v < LANE_CHANGE_MIN_SPEED_MPS:
            desire = Desire.TURN_LEFT if turn < 0 else Desire.TURN_RIGHT
        return DriverSignals(desire=int(desire),
                             left_blinker=(self.lc_state != "idle" and self.lc_dir < 0) or turn < 0,
                             right_blinker=(self.lc_state != "idle" and self.lc_dir > 0) or turn > 0,
                             engaged=self.takeover is None, gas_disengage=started == "gas",
                             brake_disengage=started == "brake", steer_override=started == "steer")
