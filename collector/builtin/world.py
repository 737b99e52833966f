"""What the built-in simulator's world is made of: the shared vocabulary of roads, renderer and labels.

World frame: **NED-like and right-handed, z down**: x north, y east, z down. Poses are
``(x, y, z, roll, pitch, yaw)`` with ``R = Rz(yaw) Ry(pitch) Rx(roll)`` mapping a body FRD frame into the
world, the same Euler convention as the contract (positive yaw turns right). A body pose's origin is the
device (camera) for the ego, and the centre of the box's bottom face for other vehicles. Heights are
``-z``. Using z-down for the world means no sign flip between world and device frames.

Lateral offsets ``d`` along a road are measured to the **right** of its reference line (like FRD y);
arc length ``s`` grows in the road's direction of travel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property

import numpy as np


class MarkingStyle(str, Enum):
    SOLID = "solid"
    DASHED = "dashed"
    DOUBLE_SOLID = "double_solid"


class MarkingColor(str, Enum):
    WHITE = "white"
    YELLOW = "yellow"


@dataclass(frozen=True)
class Marking:
    """A painted longitudinal line at lateral offset ``offset_m`` from the road's reference line."""

    offset_m: float
    style: MarkingStyle = MarkingStyle.DASHED
    color: MarkingColor = MarkingColor.WHITE
    width_m: float = 0.15
    dash_m: float = 3.0  # painted length of a dash
    gap_m: float = 9.0  # gap between dashes
    s_start_m: float = 0.0  # the marking exists for s in [s_start_m, s_end_m)
    s_end_m: float = float("inf")


@dataclass
class RoadSurface:
    """A paved ribbon along a reference polyline sampled every ~0.5 m.

    ``centre_ned`` (N,3) world points of the reference line, ``s_m`` (N,) arc length, ``heading_rad`` (N,)
    yaw of the tangent (0 = north, +pi/2 = east), ``grade_rad`` (N,) pitch of the tangent (positive nose up,
    i.e. z decreasing). The pavement spans ``left_edge_m <= d <= right_edge_m``.
    """

    name: str
    centre_ned: np.ndarray
    s_m: np.ndarray
    heading_rad: np.ndarray
    grade_rad: np.ndarray
    left_edge_m: float
    right_edge_m: float
    markings: list[Marking] = field(default_factory=list)
    lane_centres_m: tuple[float, ...] = ()  # lateral offsets of the lane centres, left to right
    lane_width_m: float = 3.6
    shoulder_m: float = 0.5  # paved shoulder outside the outermost markings (part of the pavement)

    def point_at(self, s_m: np.ndarray, d_m: np.ndarray | float = 0.0) -> np.ndarray:
        """World points (..., 3) at arc length ``s_m`` and lateral offset ``d_m`` (right of the line)."""
        s = np.asarray(s_m, dtype=np.float64)
        x = np.interp(s, self.s_m, self.centre_ned[:, 0])
        y = np.interp(s, self.s_m, self.centre_ned[:, 1])
        z = np.interp(s, self.s_m, self.centre_ned[:, 2])
        heading = np.interp(s, self.s_m, self.heading_unwrapped_rad)
        d = np.asarray(d_m, dtype=np.float64)
        # right of a tangent (cos h, sin h) in NED x-north/y-east is (-sin h, cos h)
        return np.stack([x - d * np.sin(heading), y + d * np.cos(heading), z + 0 * d], axis=-1)

    @property
    def length_m(self) -> float:
        return float(self.s_m[-1])

    @cached_property
    def heading_unwrapped_rad(self) -> np.ndarray:
        """``np.unwrap(heading_rad)`` (N,), computed once (the polyline is not changed after construction)."""
        return np.unwrap(self.heading_rad)


@dataclass(frozen=True)
class StopLine:
    """A painted stop bar across a road at arc length ``s_m``, from ``d_from_m`` to ``d_to_m``."""

    road: str
    s_m: float
    d_from_m: float
    d_to_m: float
    width_m: float = 0.4


@dataclass
class World:
    """Everything static: roads (carriageways, junction patches) and stop lines."""

    roads: list[RoadSurface]
    stop_lines: list[StopLine] = field(default_factory=list)

    def road(self, name: str) -> RoadSurface:
        for r in self.roads:
            if r.name == name:
                return r
        raise KeyError(f"no road {name!r}; roads: {[r.name for r in self.roads]}")


@dataclass(frozen=True)
class VehicleBox:
    """Another vehicle as the renderer sees it: a box standing on the road.

    ``pose_ned`` (6,) is the centre of the box's bottom face and its orientation.
    """

    pose_ned: np.ndarray
    length_m: float = 4.6
    width_m: float = 1.85
    height_m: float = 1.5
    rgb: tuple[int, int, int] = (150, 150, 160)
    brake_lights: bool = False


@dataclass(frozen=True)
class Lighting:
    """Per-episode appearance: sun, exposure, noise and the colours of the ground (seeded by the scenario)."""

    sun_elevation_rad: float = 0.8
    sun_azimuth_rad: float = 0.5
    ambient: float = 0.55  # fraction of light that is not directional
    exposure: float = 1.0  # multiplies the linear image before clipping
    sky_rgb: tuple[int, int, int] = (150, 180, 220)
    noise_std: float = 2.0  # sensor noise, in 8-bit units
    asphalt_rgb: tuple[int, int, int] = (90, 90, 92)
    grass_rgb: tuple[int, int, int] = (70, 100, 55)  # the verges
    paint_wear: float = 0.0  # 0: fresh paint; 1: paint the colour of the asphalt
    asphalt_contrast: float = 0.08  # relative brightness range of the asphalt texture
