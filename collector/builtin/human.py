"""What makes the expert drive like a person: lateral wander, a new cruise speed now and then, and reaction time.

All of it is seeded (a generator of its own, drawn once from the episode's), so an episode stays bit-identical, and
all of it is labelled the usual way: the plan is the car's actual future, wander and recoveries included.

* **Wander:** the lateral target drifts about the lane centre as an Ornstein-Uhlenbeck process
  (``dw = -w / tau dt + sigma sqrt(2 dt / tau) N(0, 1)``, ``sigma`` = ``wander_m``, ``tau`` = ``wander_time_s``),
  never so far that a wheel would cross a line.
* **Speed:** at seeded times (``speed_changes_per_min``) the driver picks a new cruise speed, a factor
  ``speed_change_factor`` of the episode's; the speed controller eases towards it.
* **Reaction:** the pedals carry out the driver's decisions ``reaction_s`` late; braking harder than
  ``EMERGENCY_MPS2`` is never delayed.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from ..scenarios import DriverProfile, sample_range

EMERGENCY_MPS2 = -2.5
LINE_CLEARANCE_M = 0.2  # the wander keeps the wheels at least this far inside the lane lines


class HumanFactors:
    def __init__(self, profile: DriverProfile, rng: np.random.Generator, duration_s: float, dt_s: float,
                 v_cruise_mps: float, lane_width_m: float, car_width_m: float, event_times):
        self.rng, self.dt_s, self.v_cruise = rng, dt_s, v_cruise_mps
        self.sigma_m = sample_range(rng, profile.wander_m)
        self.tau_s = sample_range(rng, profile.wander_time_s)
        self.max_wander_m = max(0.5 * (lane_width_m - car_width_m) - LINE_CLEARANCE_M, 0.0)
        self.wander_m = float(np.clip(rng.normal(0.0, self.sigma_m), -self.max_wander_m, self.max_wander_m))
        delay = int(round(sample_range(rng, profile.reaction_s) / dt_s))
        self.decisions: deque = deque([0.0] * delay, maxlen=delay + 1)
        times = event_times(rng, sample_range(rng, profile.speed_changes_per_min), duration_s, 3.0)
        self.speed_changes = [(t, v_cruise_mps * sample_range(rng, profile.speed_change_factor)) for t in times]
        self.big_share = profile.big_perturbation_share

    def cruise_mps(self, t_s: float) -> float:
        """The cruise speed the driver aims for at ``t_s``."""
        speed = self.v_cruise
        for t, v in self.speed_changes:
            if t <= t_s:
                speed = v
        return speed

    def step_wander(self) -> float:
        """Advance the wander by one step; the lateral offset (m, right positive) to add to the lane centre."""
        kick = self.sigma_m * math.sqrt(2.0 * self.dt_s / self.tau_s) * self.rng.normal()
        self.wander_m += -self.wander_m / self.tau_s * self.dt_s + kick
        self.wander_m = min(max(self.wander_m, -self.max_wander_m), self.max_wander_m)
        return self.wander_m

    def react(self, accel_mps2: float) -> float:
        """The acceleration the pedals carry out now: the decision of ``reaction_s`` ago, or an emergency at once."""
        self.decisions.append(accel_mps2)
        late = self.decisions[0]
        return min(late, accel_mps2) if accel_mps2 < EMERGENCY_MPS2 else late

    def perturbation_scale(self) -> float:
        """2 for the share of perturbations that push harder, else 1 (one draw per perturbation)."""
        return 2.0 if self.rng.random() < self.big_share else 1.0
