"""How a driver's signals become openpilot desires: the rules every simulator backend labels with.

openpilot's desire helper: with a blinker on below ``LANE_CHANGE_MIN_SPEED_MPS`` the desire is a turn; at
or above it a lane change. Our labels mark laneChangeLeft/Right from the first frame of the lateral move until
the camera is within ``CENTRED_M`` of the new lane's centre, and a turn blinker from ``TURN_SIGNAL_M`` before a
junction until its end (see docs/labels.md).
"""

LANE_CHANGE_MIN_SPEED_MPS = 8.94  # 20 mph
TURN_SIGNAL_M = 35.0
CENTRED_M = 0.25
