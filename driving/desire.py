"""Lane changes the openpilot way: the driver signals, the model decides when the change is done.

Our own state machine after openpilot's ``selfdrive/controls/lib/desire_helper.py`` (read, not copied):

``off`` -> (one blinker turns on, speed >= ``LANE_CHANGE_MIN_SPEED_MPS``) -> ``pre`` -> (the driver nudges the wheel
towards that side; our drivers nudge at once) -> ``starting``: the desire fed to the model is laneChangeLeft/Right;
the lane lines fade out over 0.5 s, and once the model's own ``desire_state`` says the lane change is over (its
laneChangeLeft + laneChangeRight probability below 0.02) -> ``finishing`` (desire still laneChange*, lane lines fade
back in over 1 s) -> ``off`` (or ``pre`` while the blinker stays on). A change that takes longer than
``LANE_CHANGE_TIME_MAX_S`` is abandoned (``off``). The model sees the desire as pulses on its rising edge
(``contract.inputs``), exactly as modeld feeds it.
"""

from __future__ import annotations

from ..collector.desire_rules import LANE_CHANGE_MIN_SPEED_MPS
from ..contract.constants import DT_S, Desire

LANE_CHANGE_TIME_MAX_S = 10.0
DONE_PROB = 0.02

OFF, PRE, STARTING, FINISHING = "off", "pre", "starting", "finishing"


class DesireHelper:
    """One instance per drive; :meth:`update` once per model frame, after the model ran."""

    def __init__(self):
        self.state, self.direction = OFF, 0  # direction -1 left, +1 right
        self.timer_s, self.lane_line_prob, self.prev_one_blinker = 0.0, 1.0, False

    @property
    def desire(self) -> int:
        """The desire to feed the model now (contract Desire)."""
        if self.state in (STARTING, FINISHING) and self.direction:
            return int(Desire.LANE_CHANGE_LEFT if self.direction < 0 else Desire.LANE_CHANGE_RIGHT)
        return int(Desire.NONE)

    def update(self, left_blinker: bool, right_blinker: bool, v_ego_mps: float, lane_change_prob: float) -> None:
        one_blinker = left_blinker != right_blinker
        too_slow = v_ego_mps < LANE_CHANGE_MIN_SPEED_MPS
        if self.timer_s > LANE_CHANGE_TIME_MAX_S:
            self.state, self.direction = OFF, 0
        elif self.state == OFF:
            if one_blinker and not self.prev_one_blinker and not too_slow:
                self.state, self.lane_line_prob = PRE, 1.0
        elif self.state == PRE:
            self.direction = -1 if left_blinker else 1
            if not one_blinker or too_slow:
                self.state, self.direction = OFF, 0
            else:  # our drivers nudge the wheel towards the blinker at once
                self.state = STARTING
        elif self.state == STARTING:
            self.lane_line_prob = max(self.lane_line_prob - 2 * DT_S, 0.0)
            if lane_change_prob < DONE_PROB and self.lane_line_prob < 0.01:
                self.state = FINISHING
        elif self.state == FINISHING:
            self.lane_line_prob = min(self.lane_line_prob + DT_S, 1.0)
            if self.lane_line_prob > 0.99:
                self.direction = 0
                self.state = PRE if one_blinker else OFF
        self.timer_s = 0.0 if self.state in (OFF, PRE) else self.timer_s + DT_S
        self.prev_one_blinker = one_blinker
