"""The ego car of the built-in simulator: a kinematic bicycle driven by commands, and the route frame it moves in.

A driver (the expert, a reference driver or a model through openpilot-style controls) sends a
:class:`DriveCommand` every 50 ms: a desired curvature (1/m, positive right, the contract's sign) and a desired
acceleration (m/s^2), plus the signals a driver gives (blinkers, desire, takeovers). :class:`Vehicle` turns them
into motion the way a car's actuators would: the road-wheel angle ``atan(wheelbase * curvature)`` is limited
(``max_steer_rad``), follows the command with a first-order lag (``steer_lag_s``) and a rate limit (the smaller
of ``max_steer_rate_radps`` and the rate that keeps lateral jerk under ``max_lat_jerk_mps3``); the acceleration is
limited (``min/max_accel_mps2``) and its jerk too; speed never goes below 0 (a standstill holds).

Frames: world NED (x north, y east, z down), heading 0 = north, positive yaw turns right. The car's state is its
rear-axle point; the device (camera) sits ``camera_ahead_of_rear_axle_m`` ahead of it on the body x axis. The
route frame (``s`` along the route's reference line, ``d`` to its right) comes from :class:`RouteFrame`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .roads import DS_M, RoadNetwork

GAS_PRESSED_MPS2 = 0.3  # the pedals as labels see them: commanded acceleration above this is "gas pressed"
BRAKE_PRESSED_MPS2 = -0.5  # ... below this "brake pressed"


@dataclass(frozen=True)
class VehicleParams:
    """Geometry and actuator limits of the ego car (defaults: a typical mid-size car)."""

    wheelbase_m: float = 2.7
    camera_ahead_of_rear_axle_m: float = 1.5
    front_ahead_of_rear_axle_m: float = 3.5  # front bumper
    rear_behind_rear_axle_m: float = 1.0  # rear bumper
    width_m: float = 1.85
    max_steer_rad: float = 0.6
    max_steer_rate_radps: float = 0.7
    max_lat_jerk_mps3: float = 5.0  # the steering rate is limited so lateral acceleration changes no faster
    steer_lag_s: float = 0.08
    max_accel_mps2: float = 2.0
    min_accel_mps2: float = -8.0
    max_jerk_up_mps3: float = 3.0
    max_jerk_down_mps3: float = 15.0

    @property
    def length_m(self) -> float:
        return self.front_ahead_of_rear_axle_m + self.rear_behind_rear_axle_m

    @property
    def centre_ahead_of_camera_m(self) -> float:
        """Where the middle of the car's box is, ahead of the camera (negative: behind it)."""
        return 0.5 * (self.front_ahead_of_rear_axle_m - self.rear_behind_rear_axle_m) - \
            self.camera_ahead_of_rear_axle_m


DEFAULT_VEHICLE = VehicleParams()
BODY_LAG_S = 0.3  # the body settles into its pitch and roll with this time constant (suspension)


@dataclass(frozen=True)
class CameraMount:
    """How the device sits in this car: height above the road, how the body pitches and rolls, the device's rotation
    in the car and modeld's calibration of it (the model frames show the car's view turned by the difference), and
    the wide camera's rotation against the road camera (``big_img`` shows it; the model predicts it)."""

    height_m: float = 1.22
    pitch_per_mps2: float = 0.0  # body pitch (rad, nose up positive) per m/s^2 of acceleration
    roll_per_mps2: float = 0.0  # body roll (rad, right side down positive) per m/s^2 of lateral acceleration (right)
    mount_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the device's true rotation in the car
    calib_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)  # modeld's estimate of it (the warp uses this)
    wide_from_device_rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


def draw_mount(profile, rng: np.random.Generator) -> CameraMount:
    """A :class:`CameraMount` from a scenario's ``CameraProfile`` (angles drawn as normal with its stds)."""
    def sample(bounds) -> float:
        return float(bounds[0] + (bounds[1] - bounds[0]) * rng.random())

    mount = rng.normal(0.0, math.radians(profile.mount_deg), 3)
    calib = mount + rng.normal(0.0, math.radians(profile.calib_error_deg), 3)
    wide = rng.normal(0.0, math.radians(profile.wide_rotation_deg), 3)
    return CameraMount(height_m=sample(profile.height_m), pitch_per_mps2=sample(profile.pitch_per_mps2),
                       roll_per_mps2=sample(profile.roll_per_mps2), mount_rpy=tuple(map(float, mount)),
                       calib_rpy=tuple(map(float, calib)), wide_from_device_rpy=tuple(map(float, wide)))


@dataclass(frozen=True)
class DriverSignals:
    """What a driver does besides steering and pedals (recorded for the labels: meta, desire)."""

    desire: int = 0  # contract Desire enum, as openpilot's desire helper would set it
    left_blinker: bool = False
    right_blinker: bool = False
    engaged: bool = True  # the driving system (the expert stands in for it) is in control
    gas_disengage: bool = False  # a takeover of this kind starts at this frame
    brake_disengage: bool = False
    steer_override: bool = False


@dataclass(frozen=True)
class DriveCommand:
    """One 50 ms command: desired curvature (1/m, positive right) and acceleration (m/s^2), plus signals."""

    curvature_inv_m: float
    accel_mps2: float
    signals: DriverSignals = field(default_factory=DriverSignals)
    d_target_m: float | None = None  # where the driver is heading laterally (traffic reads it), None: where it is


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


class Vehicle:
    """The ego car's state (rear axle x, y, yaw; speed, acceleration, road-wheel angle) and one step of motion."""

    def __init__(self, route: RouteFrame, s_cam_m: float, d_cam_m: float, speed_mps: float, dt_s: float,
                 params: VehicleParams = DEFAULT_VEHICLE, mount: CameraMount | None = None):
        self.route, self.dt_s, self.params = route, dt_s, params
        self.mount = mount or CameraMount()
        self.body_pitch, self.body_roll = 0.0, 0.0
        h = route.heading(s_cam_m)
        cx, cy = route.point(s_cam_m, d_cam_m)
        ahead = params.camera_ahead_of_rear_axle_m
        self.x, self.y = cx - ahead * math.cos(h), cy - ahead * math.sin(h)
        self.yaw, self.v, self.a, self.steer = h, speed_mps, 0.0, 0.0
        self.s_cam, self.d_cam = s_cam_m, d_cam_m
        self.s_rear = s_cam_m - ahead
        self.accel_command = 0.0  # the last acceleration command after the actuator limits (the pedals)

    def camera_xy(self) -> tuple[float, float]:
        ahead = self.params.camera_ahead_of_rear_axle_m
        return self.x + ahead * math.cos(self.yaw), self.y + ahead * math.sin(self.yaw)

    def camera_pose(self) -> tuple[float, float, float, float, float, float]:
        """(x, y, z, roll, pitch, yaw) of the device: the mount's height above the route surface, pitched with the
        road's grade and the body's pitch, rolled with the body, yawed with the car."""
        cx, cy = self.camera_xy()
        z = self.route.at(self.route.z, self.s_cam) - self.mount.height_m
        pitch = self.route.at(self.route.grade, self.s_cam) + self.body_pitch
        return cx, cy, z, self.body_roll, pitch, math.remainder(self.yaw, 2 * math.pi)

    def limit_accel(self, accel_mps2: float) -> float:
        """The acceleration the actuators deliver for a command: bounded, then jerk-limited from the current one."""
        p, dt = self.params, self.dt_s
        a_cmd = min(max(accel_mps2, p.min_accel_mps2), p.max_accel_mps2)
        return self.a + min(max(a_cmd - self.a, -p.max_jerk_down_mps3 * dt), p.max_jerk_up_mps3 * dt)

    def steer_towards(self, curvature_inv_m: float) -> None:
        """Move the road-wheel angle towards the one of the commanded curvature (limits, lag, rate)."""
        p, dt = self.params, self.dt_s
        steer_cmd = math.atan(p.wheelbase_m * curvature_inv_m)
        steer_cmd = min(max(steer_cmd, -p.max_steer_rad), p.max_steer_rad)
        rate = (steer_cmd - self.steer) * min(dt / p.steer_lag_s, 1.0) / dt
        rate_max = min(p.max_steer_rate_radps, p.wheelbase_m * p.max_lat_jerk_mps3 / max(self.v, 1.0) ** 2)
        self.steer += min(max(rate, -rate_max), rate_max) * dt

    def actuate(self, command: DriveCommand) -> float:
        """Apply a command's acceleration and steering for this step; returns the new speed (not yet moved)."""
        self.accel_command = self.limit_accel(command.accel_mps2)
        self.steer_towards(command.curvature_inv_m)
        v_new = max(self.v + self.accel_command * self.dt_s, 0.0)  # a standstill holds (the brake is still pressed)
        self.a = (v_new - self.v) / self.dt_s
        return v_new

    def move(self, v_new: float) -> None:
        """Kinematic bicycle about the rear axle (midpoint rule), then re-project onto the route."""
        p = self.params
        ds = 0.5 * (self.v + v_new) * self.dt_s
        dyaw = ds * math.tan(self.steer) / p.wheelbase_m
        self.x += ds * math.cos(self.yaw + 0.5 * dyaw)
        self.y += ds * math.sin(self.yaw + 0.5 * dyaw)
        self.yaw += dyaw
        self.v = v_new
        self.s_rear, _ = self.route.project(self.x, self.y, self.s_rear + ds)
        cx, cy = self.camera_xy()
        self.s_cam, self.d_cam = self.route.project(cx, cy, self.s_cam + ds)
        alpha = min(self.dt_s / BODY_LAG_S, 1.0)
        lateral_mps2 = self.v ** 2 * self.curvature_inv_m
        self.body_pitch += alpha * (self.mount.pitch_per_mps2 * self.a - self.body_pitch)
        self.body_roll += alpha * (-self.mount.roll_per_mps2 * lateral_mps2 - self.body_roll)

    @property
    def curvature_inv_m(self) -> float:
        """The curvature the car drives now (from its road-wheel angle)."""
        return math.tan(self.steer) / self.params.wheelbase_m
