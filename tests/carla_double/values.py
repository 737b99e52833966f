"""Plain value types: ``WorldSettings``, ``WeatherParameters`` (with the 0.9.16 presets), ``VehicleControl``,
``Timestamp``, ``WorldSnapshot`` / ``ActorSnapshot`` and ``LaneMarking`` (attribute names, defaults and string
forms as in the real module)."""

from __future__ import annotations

from .enums import LaneChange, LaneMarkingColor, LaneMarkingType
from .errors import NoInit


class WorldSettings:
    __slots__ = (
        "synchronous_mode",
        "no_rendering_mode",
        "_fixed_delta",
        "substepping",
        "max_substep_delta_time",
        "max_substeps",
        "max_culling_distance",
        "deterministic_ragdolls",
        "tile_stream_distance",
        "actor_active_distance",
        "spectator_as_ego",
    )

    def __init__(
        self,
        synchronous_mode=False,
        no_rendering_mode=False,
        fixed_delta_seconds=0.0,
        substepping=True,
        max_substep_delta_time=0.01,
        max_substeps=10,
        max_culling_distance=0.0,
        deterministic_ragdolls=False,
        tile_stream_distance=3000.0,
        actor_active_distance=2000.0,
        spectator_as_ego=True,
    ):
        self.synchronous_mode = bool(synchronous_mode)
        self.no_rendering_mode = bool(no_rendering_mode)
        self.fixed_delta_seconds = fixed_delta_seconds
        self.substepping = bool(substepping)
        self.max_substep_delta_time = float(max_substep_delta_time)
        self.max_substeps = int(max_substeps)
        self.max_culling_distance = float(max_culling_distance)
        self.deterministic_ragdolls = bool(deterministic_ragdolls)
        self.tile_stream_distance = float(tile_stream_distance)
        self.actor_active_distance = float(actor_active_distance)
        self.spectator_as_ego = bool(spectator_as_ego)

    @property
    def fixed_delta_seconds(self):
        """None when unset (variable time step), as the real property returns."""
        return self._fixed_delta

    @fixed_delta_seconds.setter
    def fixed_delta_seconds(self, value):
        fds = 0.0 if value is None else float(value)
        self._fixed_delta = fds if fds > 0.0 else None

    def _key(self):
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, WorldSettings) and self._key() == other._key()

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def _copy(self) -> WorldSettings:
        out = WorldSettings()
        for k in self.__slots__:
            setattr(out, k, getattr(self, k))
        return out

    def __repr__(self):
        def b(v):
            return "True" if v else "False"

        return (
            f"WorldSettings(synchronous_mode={b(self.synchronous_mode)},no_rendering_mode="
            f"{b(self.no_rendering_mode)},fixed_delta_seconds={self._fixed_delta or 0:g},substepping="
            f"{b(self.substepping)},max_substep_delta_time={self.max_substep_delta_time:g},max_substeps="
            f"{self.max_substeps},max_culling_distance={self.max_culling_distance:g},deterministic_ragdolls="
            f"{b(self.deterministic_ragdolls)})"
        )

    __str__ = __repr__


_WEATHER_FIELDS = (
    "cloudiness",
    "precipitation",
    "precipitation_deposits",
    "wind_intensity",
    "sun_azimuth_angle",
    "sun_altitude_angle",
    "fog_density",
    "fog_distance",
    "fog_falloff",
    "wetness",
    "scattering_intensity",
    "mie_scattering_scale",
    "rayleigh_scattering_scale",
    "dust_storm",
)


class WeatherParameters:
    __slots__ = _WEATHER_FIELDS

    def __init__(
        self,
        cloudiness=0.0,
        precipitation=0.0,
        precipitation_deposits=0.0,
        wind_intensity=0.0,
        sun_azimuth_angle=0.0,
        sun_altitude_angle=0.0,
        fog_density=0.0,
        fog_distance=0.0,
        fog_falloff=0.0,
        wetness=0.0,
        scattering_intensity=0.0,
        mie_scattering_scale=0.0,
        rayleigh_scattering_scale=0.03310000151395798,
        dust_storm=0.0,
    ):
        values = locals()
        for k in _WEATHER_FIELDS:
            setattr(self, k, float(values[k]))

    def __eq__(self, other):
        return isinstance(other, WeatherParameters) and all(
            getattr(self, k) == getattr(other, k) for k in _WEATHER_FIELDS
        )

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __repr__(self):
        return "WeatherParameters(" + ", ".join(f"{k}={getattr(self, k):.6f}" for k in _WEATHER_FIELDS) + ")"

    __str__ = __repr__


def _copy_weather(w: WeatherParameters) -> WeatherParameters:
    return WeatherParameters(*(getattr(w, k) for k in _WEATHER_FIELDS))


# (cloudiness, precipitation, deposits, wind, azimuth, altitude, fog_density, fog_distance, fog_falloff, wetness)
# of the presets of CARLA 0.9.16; the last four fields are 1.0, 0.03, 0.0331, 0.0 (dust_storm 100 in DustStorm).
_PRESETS = {
    "Default": (-1, -1, -1, -1, -1, -1, -1, -1, -1, -1),
    "ClearNoon": (5, 0, 0, 10, -1, 45, 2, 0.75, 0.1, 0),
    "ClearSunset": (5, 0, 0, 10, -1, 15, 2, 0.75, 0.1, 0),
    "ClearNight": (5, 0, 0, 10, -1, -90, 60, 75, 1, 0),
    "CloudyNoon": (60, 0, 0, 10, -1, 45, 3, 0.75, 0.1, 0),
    "CloudySunset": (60, 0, 0, 10, -1, 15, 3, 0.75, 0.1, 0),
    "CloudyNight": (60, 0, 0, 10, -1, -90, 60, 0.75, 0.1, 0),
    "WetNoon": (5, 0, 50, 10, -1, 45, 3, 0.75, 0.1, 0),
    "WetSunset": (5, 0, 50, 10, -1, 15, 2, 0.75, 0.1, 0),
    "WetNight": (5, 0, 50, 10, -1, -90, 60, 75, 1, 60),
    "WetCloudyNoon": (60, 0, 50, 10, -1, 45, 3, 0.75, 0.1, 0),
    "WetCloudySunset": (60, 0, 50, 10, -1, 15, 2, 0.75, 0.1, 0),
    "WetCloudyNight": (60, 0, 50, 10, -1, -90, 60, 0.75, 0.1, 60),
    "SoftRainNoon": (20, 30, 50, 30, -1, 45, 3, 0.75, 0.1, 0),
    "SoftRainSunset": (20, 30, 50, 30, -1, 15, 2, 0.75, 0.1, 0),
    "SoftRainNight": (60, 30, 50, 30, -1, -90, 60, 0.75, 0.1, 60),
    "MidRainyNoon": (60, 60, 60, 60, -1, 45, 3, 0.75, 0.1, 0),
    "MidRainSunset": (60, 60, 60, 60, -1, 15, 3, 0.75, 0.1, 0),
    "MidRainyNight": (80, 60, 60, 60, -1, -90, 60, 0.75, 0.1, 80),
    "HardRainNoon": (100, 100, 90, 100, -1, 45, 7, 0.75, 0.1, 0),
    "HardRainSunset": (100, 100, 90, 100, -1, 15, 7, 0.75, 0.1, 0),
    "HardRainNight": (100, 100, 90, 100, -1, -90, 100, 0.75, 0.1, 100),
    "DustStorm": (100, 0, 0, 100, -1, 45, 2, 0.75, 0.1, 0),
}
for _name, _v in _PRESETS.items():
    setattr(
        WeatherParameters,
        _name,
        WeatherParameters(*_v, 1.0, 0.03, 0.03310000151395798, 100.0 if _name == "DustStorm" else 0.0),
    )


class VehicleControl:
    __slots__ = ("throttle", "steer", "brake", "hand_brake", "reverse", "manual_gear_shift", "gear")

    def __init__(
        self, throttle=0.0, steer=0.0, brake=0.0, hand_brake=False, reverse=False, manual_gear_shift=False, gear=0
    ):
        self.throttle, self.steer, self.brake = float(throttle), float(steer), float(brake)
        self.hand_brake, self.reverse, self.manual_gear_shift = bool(hand_brake), bool(reverse), bool(manual_gear_shift)
        self.gear = int(gear)

    def _key(self):
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, VehicleControl) and self._key() == other._key()

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __repr__(self):
        return (
            f"VehicleControl(throttle={self.throttle:.6f}, steer={self.steer:.6f}, brake={self.brake:.6f}, "
            f"hand_brake={self.hand_brake}, reverse={self.reverse}, manual_gear_shift={self.manual_gear_shift}, "
            f"gear={self.gear})"
        )

    __str__ = __repr__


class Timestamp:
    __slots__ = ("frame", "elapsed_seconds", "delta_seconds", "platform_timestamp")

    def __init__(self, frame=0, elapsed_seconds=0.0, delta_seconds=0.0, platform_timestamp=0.0):
        self.frame, self.elapsed_seconds = int(frame), float(elapsed_seconds)
        self.delta_seconds, self.platform_timestamp = float(delta_seconds), float(platform_timestamp)

    @property
    def frame_count(self):
        return self.frame

    def __eq__(self, other):
        return isinstance(other, Timestamp) and self.frame == other.frame

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __repr__(self):
        return (
            f"Timestamp(frame={self.frame},elapsed_seconds={self.elapsed_seconds:.6f},delta_seconds="
            f"{self.delta_seconds:.6f},platform_timestamp={self.platform_timestamp:.6f})"
        )

    __str__ = __repr__


class ActorSnapshot(NoInit):
    """One actor's state in a WorldSnapshot (kinematics copied at the tick)."""

    __slots__ = ("id", "_transform", "_velocity", "_angular_velocity", "_acceleration")

    def _setup(self, actor_id, transform, velocity, angular_velocity, acceleration):
        self.id, self._transform, self._velocity = actor_id, transform, velocity
        self._angular_velocity, self._acceleration = angular_velocity, acceleration

    def get_transform(self):
        return self._transform

    def get_velocity(self):
        return self._velocity

    def get_angular_velocity(self):
        return self._angular_velocity

    def get_acceleration(self):
        return self._acceleration

    def __repr__(self):
        return f"ActorSnapshot(id={self.id})"


class WorldSnapshot(NoInit):
    __slots__ = ("id", "timestamp", "_actors")

    def _setup(self, episode_id: int, timestamp: Timestamp, actors: dict):
        self.id, self.timestamp, self._actors = episode_id, timestamp, actors

    frame = property(lambda self: self.timestamp.frame)
    frame_count = property(lambda self: self.timestamp.frame)
    elapsed_seconds = property(lambda self: self.timestamp.elapsed_seconds)
    delta_seconds = property(lambda self: self.timestamp.delta_seconds)
    platform_timestamp = property(lambda self: self.timestamp.platform_timestamp)

    def has_actor(self, actor_id) -> bool:
        return int(actor_id) in self._actors

    def find(self, actor_id):
        return self._actors.get(int(actor_id))

    def __len__(self):
        return len(self._actors)

    def __iter__(self):
        return iter(list(self._actors.values()))

    def __eq__(self, other):
        return isinstance(other, WorldSnapshot) and self.id == other.id and self.frame == other.frame

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __repr__(self):
        return f"WorldSnapshot(frame={self.frame})"


class LaneMarking(NoInit):
    """A lane's road mark (read-only attributes), as ``Waypoint.left_lane_marking`` returns."""

    __slots__ = ("_type", "_color", "_lane_change", "_width")

    def _setup(self, type_=LaneMarkingType.NONE, color=LaneMarkingColor.White, lane_change=LaneChange.NONE, width=0.0):
        self._type, self._color, self._lane_change, self._width = type_, color, lane_change, float(width)

    type = property(lambda self: self._type)
    color = property(lambda self: self._color)
    lane_change = property(lambda self: self._lane_change)
    width = property(lambda self: self._width)

    def __repr__(self):
        return f"<LaneMarking type={self._type} color={self._color} lane_change={self._lane_change}>"
