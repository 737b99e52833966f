"""Blueprints: ``ActorAttribute``, ``ActorBlueprint``, ``BlueprintLibrary`` and the per-version catalogues.

Semantics follow LibCarla: ``find`` raises IndexError("blueprint 'x' not found"), ``get_attribute`` raises
IndexError("attribute 'x' not found"), setting a read-only attribute raises ValueError("<id>: read-only
attribute"), ``set_attribute`` takes strings only, ``as_*`` of the wrong type raises RuntimeError ("bad
attribute cast"), and blueprints handed out by ``find``/iteration are copies. ``filter`` matches the id or any
tag with shell-style wildcards.

Vehicle sets: UE4 servers (0.9.15 / 0.9.16) have the generation 1 and 2 vehicles (cars, trucks, vans, a bus,
motorcycles, bicycles) with a ``base_type`` attribute; the 0.10.0 (UE5) server has its own small set (new ids
such as ``vehicle.taxi.ford``, ``vehicle.dodgecop.charger``, ``vehicle.ue4.audi.tt``) whose ``base_type`` values
are what that build reports (some are wrong there too, e.g. ``bus`` for ported cars, '' for the Sprinter).
Sensors: ``sensor.camera.rgb`` (its full attribute set) and ``sensor.other.collision``.
"""

from __future__ import annotations

import copy
import fnmatch

from .enums import ActorAttributeType as T
from .errors import NoInit, argument_error
from .geom import Color

_BOOL, _INT, _FLOAT, _STR, _COLOR = T.Bool, T.Int, T.Float, T.String, T.RGBColor


class ActorAttribute(NoInit):
    __slots__ = ("_id", "_type", "_value", "_recommended", "_modifiable")

    def _setup(self, id_, type_, value, recommended=(), modifiable=True):
        self._id, self._type, self._value = id_, type_, str(value)
        self._recommended, self._modifiable = list(recommended), bool(modifiable)

    id = property(lambda self: self._id)
    type = property(lambda self: self._type)
    recommended_values = property(lambda self: list(self._recommended))
    is_modifiable = property(lambda self: self._modifiable)

    def _cast(self, wanted, name):
        if self._type != wanted:
            raise RuntimeError(f"{self._id}: bad attribute cast: cannot convert to {name}")

    def as_bool(self) -> bool:
        self._cast(_BOOL, "Bool")
        value = self._value.lower()
        if value not in ("true", "false"):
            raise ValueError(f"{self._id}: invalid bool: {self._value}")
        return value == "true"

    def as_int(self) -> int:
        self._cast(_INT, "Int")
        try:
            return int(float(self._value))
        except ValueError:
            return 0

    def as_float(self) -> float:
        self._cast(_FLOAT, "Float")
        try:
            return float(self._value)
        except ValueError:
            return 0.0

    def as_str(self) -> str:
        self._cast(_STR, "String")
        return self._value

    def as_color(self) -> Color:
        self._cast(_COLOR, "RGBColor")
        parts = self._value.split(",")
        if len(parts) != 3:
            raise ValueError(f"{self._id}: colors must have 3 channels (R,G,B)")
        return Color(*(int(p) for p in parts))

    def _validate(self):
        {_BOOL: self.as_bool, _INT: self.as_int, _FLOAT: self.as_float, _STR: self.as_str, _COLOR: self.as_color}[
            self._type
        ]()

    def _set(self, value: str):
        if not self._modifiable:
            raise ValueError(f"{self._id}: read-only attribute")
        old, self._value = self._value, value.lower() if self._type == _BOOL else value
        try:
            self._validate()
        except (ValueError, RuntimeError):
            self._value = old
            raise

    def _typed(self):
        return {
            _BOOL: self.as_bool,
            _INT: self.as_int,
            _FLOAT: self.as_float,
            _STR: self.as_str,
            _COLOR: self.as_color,
        }[self._type]()

    def __eq__(self, other):
        if isinstance(other, ActorAttribute):
            return self._type == other._type and self._value == other._value
        try:
            return self._typed() == other
        except (ValueError, RuntimeError):
            return False

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = object.__hash__

    def __bool__(self):
        return self.as_bool()

    def __int__(self):
        return self.as_int()

    def __float__(self):
        return self.as_float()

    def __str__(self):
        name = {_BOOL: "bool", _INT: "int", _FLOAT: "float", _STR: "str", _COLOR: "Color"}[self._type]
        value = self._value
        if self._type == _BOOL:
            value = "True" if self.as_bool() else "False"
        elif self._type == _COLOR:
            value = str(self.as_color())
        elif self._type == _FLOAT:
            value = f"{self.as_float():g}"
        return f"ActorAttribute._make(id={self._id},type={name},value={value}{'' if self._modifiable else '(const)'})"

    __repr__ = __str__


class ActorBlueprint(NoInit):
    __slots__ = ("_id", "_tags", "_attributes")

    def _setup(self, id_: str, attributes: list[ActorAttribute]):
        self._id, self._tags = id_, id_.split(".")
        self._attributes = {a.id: a for a in attributes}

    id = property(lambda self: self._id)
    tags = property(lambda self: list(self._tags))

    def has_tag(self, tag) -> bool:
        return tag in self._tags

    def match_tags(self, wildcard_pattern) -> bool:
        return fnmatch.fnmatchcase(self._id, wildcard_pattern) or any(
            fnmatch.fnmatchcase(t, wildcard_pattern) for t in self._tags
        )

    def has_attribute(self, name) -> bool:
        return name in self._attributes

    def get_attribute(self, name) -> ActorAttribute:
        try:
            return copy.copy(self._attributes[name])
        except KeyError:
            raise IndexError(f"attribute '{name}' not found") from None

    def set_attribute(self, name, value) -> None:
        if not isinstance(name, str) or not isinstance(value, str):
            raise argument_error("ActorBlueprint.set_attribute", self, name, value)
        if name not in self._attributes:
            raise IndexError(f"attribute '{name}' not found")
        self._attributes[name]._set(value)

    def __len__(self):
        return len(self._attributes)

    def __iter__(self):
        return iter([copy.copy(a) for a in self._attributes.values()])

    def __str__(self):
        return f"ActorBlueprint._make(id={self._id},tags={self._tags})"

    __repr__ = __str__

    def _copy(self) -> ActorBlueprint:
        return ActorBlueprint._make(self._id, [copy.copy(a) for a in self._attributes.values()])

    def _values(self) -> dict:
        return {k: a._value for k, a in self._attributes.items()}


class BlueprintLibrary(NoInit):
    __slots__ = ("_bps",)

    def _setup(self, blueprints: list[ActorBlueprint]):
        self._bps = sorted(blueprints, key=lambda b: b.id)

    def find(self, id) -> ActorBlueprint:
        for bp in self._bps:
            if bp.id == id:
                return bp._copy()
        raise IndexError(f"blueprint '{id}' not found")

    def filter(self, wildcard_pattern) -> BlueprintLibrary:
        return BlueprintLibrary._make([bp._copy() for bp in self._bps if bp.match_tags(wildcard_pattern)])

    def filter_by_attribute(self, name, value) -> BlueprintLibrary:
        keep = [bp for bp in self._bps if bp.has_attribute(name) and bp._attributes[name]._value == value]
        return BlueprintLibrary._make([bp._copy() for bp in keep])

    def __getitem__(self, pos):
        if not isinstance(pos, int):
            raise argument_error("BlueprintLibrary.__getitem__", self, pos)
        if not -len(self._bps) <= pos < len(self._bps):
            raise IndexError("index out of range")
        return self._bps[pos]._copy()

    def __len__(self):
        return len(self._bps)

    def __iter__(self):
        return iter([bp._copy() for bp in self._bps])

    def __str__(self):
        return "[" + ", ".join(str(bp) for bp in self._bps) + "]"


# --- catalogues -----------------------------------------------------------------------------------------------
# id: (base_type, wheels, generation, length, width, height, special_type, has_lights)
_UE4_VEHICLES = {
    "vehicle.audi.a2": ("car", 4, 1, 3.70, 1.80, 1.55, "", False),
    "vehicle.audi.etron": ("car", 4, 1, 4.86, 2.03, 1.65, "electric", True),
    "vehicle.audi.tt": ("car", 4, 1, 4.18, 1.99, 1.38, "", False),
    "vehicle.bmw.grandtourer": ("car", 4, 1, 4.61, 2.24, 1.67, "", False),
    "vehicle.chevrolet.impala": ("car", 4, 1, 5.36, 2.03, 1.41, "", False),
    "vehicle.citroen.c3": ("car", 4, 1, 3.99, 1.85, 1.62, "", False),
    "vehicle.dodge.charger_police": ("car", 4, 1, 4.97, 2.04, 1.56, "emergency", True),
    "vehicle.ford.mustang": ("car", 4, 1, 4.72, 1.89, 1.30, "", False),
    "vehicle.jeep.wrangler_rubicon": ("car", 4, 1, 3.87, 1.91, 1.88, "", False),
    "vehicle.lincoln.mkz_2017": ("car", 4, 1, 4.90, 2.13, 1.48, "", True),
    "vehicle.mercedes.coupe": ("car", 4, 1, 5.03, 2.15, 1.64, "", True),
    "vehicle.micro.microlino": ("car", 4, 1, 2.21, 1.48, 1.36, "electric", False),
    "vehicle.mini.cooper_s": ("car", 4, 1, 3.81, 1.97, 1.43, "", False),
    "vehicle.nissan.micra": ("car", 4, 1, 3.65, 1.85, 1.54, "", False),
    "vehicle.nissan.patrol": ("car", 4, 1, 4.61, 1.93, 1.86, "", False),
    "vehicle.seat.leon": ("car", 4, 1, 4.19, 1.84, 1.48, "", False),
    "vehicle.tesla.model3": ("car", 4, 1, 4.79, 2.16, 1.49, "electric", True),
    "vehicle.toyota.prius": ("car", 4, 1, 4.51, 2.01, 1.52, "electric", False),
    "vehicle.carlamotors.carlacola": ("truck", 4, 1, 5.20, 2.61, 2.47, "", False),
    "vehicle.tesla.cybertruck": ("truck", 4, 1, 6.27, 2.39, 2.10, "electric", False),
    "vehicle.volkswagen.t2": ("van", 4, 1, 4.45, 2.07, 2.04, "", False),
    "vehicle.harley-davidson.low_rider": ("motorcycle", 2, 1, 2.36, 0.76, 1.38, "", False),
    "vehicle.kawasaki.ninja": ("motorcycle", 2, 1, 2.04, 0.80, 1.32, "", False),
    "vehicle.vespa.zx125": ("motorcycle", 2, 1, 1.80, 0.74, 1.35, "", False),
    "vehicle.yamaha.yzf": ("motorcycle", 2, 1, 2.19, 0.86, 1.35, "", False),
    "vehicle.bh.crossbike": ("bicycle", 2, 1, 1.49, 0.86, 1.08, "", False),
    "vehicle.diamondback.century": ("bicycle", 2, 1, 1.66, 0.60, 1.10, "", False),
    "vehicle.gazelle.omafiets": ("bicycle", 2, 1, 1.84, 0.66, 1.13, "", False),
    "vehicle.dodge.charger_2020": ("car", 4, 2, 5.01, 2.10, 1.55, "", True),
    "vehicle.dodge.charger_police_2020": ("car", 4, 2, 5.24, 2.10, 1.64, "emergency", True),
    "vehicle.ford.crown": ("car", 4, 2, 5.36, 1.80, 1.59, "taxi", True),
    "vehicle.lincoln.mkz_2020": ("car", 4, 2, 4.89, 2.24, 1.52, "", True),
    "vehicle.mercedes.coupe_2020": ("car", 4, 2, 4.67, 1.81, 1.44, "", True),
    "vehicle.mini.cooper_s_2021": ("car", 4, 2, 4.55, 2.10, 1.77, "", True),
    "vehicle.nissan.patrol_2021": ("car", 4, 2, 5.57, 2.15, 2.05, "", True),
    "vehicle.carlamotors.european_hgv": ("truck", 4, 2, 8.00, 2.90, 3.90, "", True),
    "vehicle.carlamotors.firetruck": ("truck", 4, 2, 8.58, 2.90, 3.83, "emergency", True),
    "vehicle.ford.ambulance": ("van", 4, 2, 6.36, 2.35, 2.43, "emergency", True),
    "vehicle.mercedes.sprinter": ("van", 4, 2, 5.92, 1.99, 2.73, "", True),
    "vehicle.volkswagen.t2_2021": ("van", 4, 2, 4.44, 2.26, 2.07, "", True),
    "vehicle.mitsubishi.fusorosa": ("bus", 4, 2, 10.27, 3.93, 4.24, "", True),
}
_UE5_VEHICLES = {
    "vehicle.ambulance.ford": ("truck", 4, 2, 6.36, 2.35, 2.43, "", True),
    "vehicle.carlacola.actors": ("truck", 4, 2, 8.00, 2.91, 4.05, "", True),
    "vehicle.dodge.charger": ("car", 4, 2, 5.01, 1.88, 1.54, "", True),
    "vehicle.dodgecop.charger": ("car", 4, 2, 5.24, 1.92, 1.64, "", True),
    "vehicle.firetruck.actors": ("truck", 4, 2, 8.58, 2.90, 3.83, "", True),
    "vehicle.fuso.mitsubishi": ("bus", 4, 2, 10.17, 3.93, 4.24, "", True),
    "vehicle.lincoln.mkz": ("car", 4, 2, 4.89, 1.84, 1.52, "", True),
    "vehicle.mini.cooper": ("car", 4, 2, 4.55, 2.10, 1.77, "", True),
    "vehicle.nissan.patrol": ("car", 4, 2, 5.59, 2.15, 2.06, "", True),
    "vehicle.sprinter.mercedes": ("", 4, 2, 5.92, 1.99, 2.73, "", True),
    "vehicle.taxi.ford": ("car", 4, 2, 5.35, 1.79, 1.58, "", True),
    "vehicle.ue4.audi.tt": ("bus", 4, 2, 4.18, 1.99, 1.39, "", True),
    "vehicle.ue4.mercedes.ccc": ("bus", 4, 2, 4.67, 1.81, 1.44, "", True),
}
_COLORS = ["255,255,255", "17,37,103", "26,26,26", "145,0,0", "80,80,80", "180,150,60"]

# name: (type, default, modifiable); every camera attribute of sensor.camera.rgb in 0.9.16
_CAMERA = {
    "bloom_intensity": (_FLOAT, "0.675"),
    "black_clip": (_FLOAT, "0.0"),
    "blade_count": (_INT, "5"),
    "blur_amount": (_FLOAT, "1.0"),
    "blur_radius": (_FLOAT, "0.0"),
    "calibration_constant": (_FLOAT, "16.0"),
    "chromatic_aberration_intensity": (_FLOAT, "0.0"),
    "chromatic_aberration_offset": (_FLOAT, "0.0"),
    "enable_postprocess_effects": (_BOOL, "True"),
    "exposure_compensation": (_FLOAT, "0.0"),
    "exposure_max_bright": (_FLOAT, "12.0"),
    "exposure_min_bright": (_FLOAT, "10.0"),
    "exposure_mode": (_STR, "histogram"),
    "exposure_speed_down": (_FLOAT, "1.0"),
    "exposure_speed_up": (_FLOAT, "3.0"),
    "focal_distance": (_FLOAT, "1000.0"),
    "fov": (_FLOAT, "90.0"),
    "fstop": (_FLOAT, "1.4"),
    "gamma": (_FLOAT, "2.2"),
    "image_size_x": (_INT, "800"),
    "image_size_y": (_INT, "600"),
    "iso": (_FLOAT, "100.0"),
    "lens_circle_falloff": (_FLOAT, "5.0"),
    "lens_circle_multiplier": (_FLOAT, "0.0"),
    "lens_flare_intensity": (_FLOAT, "0.1"),
    "lens_k": (_FLOAT, "-1.0"),
    "lens_kcube": (_FLOAT, "0.0"),
    "lens_x_size": (_FLOAT, "0.08"),
    "lens_y_size": (_FLOAT, "0.08"),
    "min_fstop": (_FLOAT, "1.2"),
    "motion_blur_intensity": (_FLOAT, "0.45"),
    "motion_blur_max_distortion": (_FLOAT, "0.35"),
    "motion_blur_min_object_screen_size": (_FLOAT, "0.1"),
    "role_name": (_STR, "front"),
    "sensor_tick": (_FLOAT, "0.0"),
    "shoulder": (_FLOAT, "0.26"),
    "shutter_speed": (_FLOAT, "200.0"),
    "slope": (_FLOAT, "0.88"),
    "temp": (_FLOAT, "6500.0"),
    "tint": (_FLOAT, "0.0"),
    "toe": (_FLOAT, "0.55"),
    "white_clip": (_FLOAT, "0.04"),
}


def vehicle_specs(version: str) -> dict:
    return _UE5_VEHICLES if version.startswith("0.10") else _UE4_VEHICLES


def _vehicle(id_: str, spec) -> ActorBlueprint:
    base, wheels, generation, _l, _w, _h, special, lights = spec
    attrs = [
        ActorAttribute._make("base_type", _STR, base, modifiable=False),
        ActorAttribute._make("color", _COLOR, _COLORS[len(id_) % len(_COLORS)], _COLORS),
        ActorAttribute._make("generation", _INT, generation, modifiable=False),
        ActorAttribute._make("has_dynamic_doors", _BOOL, "false", modifiable=False),
        ActorAttribute._make("has_lights", _BOOL, "true" if lights else "false", modifiable=False),
        ActorAttribute._make("number_of_wheels", _INT, wheels, modifiable=False),
        ActorAttribute._make("object_type", _STR, "", modifiable=False),
        ActorAttribute._make("role_name", _STR, "autopilot", ["autopilot", "scenario", "ego_vehicle"]),
        ActorAttribute._make("special_type", _STR, special, modifiable=False),
        ActorAttribute._make("sticky_control", _BOOL, "true"),
        ActorAttribute._make("terramechanics", _BOOL, "false"),
    ]
    if wheels == 2:
        attrs.append(ActorAttribute._make("driver_id", _INT, "0", ["0"]))
    return ActorBlueprint._make(id_, attrs)


def library_for(version: str) -> list[ActorBlueprint]:
    """Every blueprint a server of ``version`` offers (fresh objects)."""
    bps = [_vehicle(k, v) for k, v in vehicle_specs(version).items()]
    cam = [
        ActorAttribute._make(k, t, d, ["front", "back", "left", "right"] if k == "role_name" else ())
        for k, (t, d) in _CAMERA.items()
    ]
    bps.append(ActorBlueprint._make("sensor.camera.rgb", cam))
    bps.append(ActorBlueprint._make("sensor.other.collision", [ActorAttribute._make("role_name", _STR, "front")]))
    return bps


def vehicle_box(version: str, type_id: str):
    """(half length, half width, half height) of a vehicle model."""
    spec = vehicle_specs(version)[type_id]
    return spec[3] / 2.0, spec[4] / 2.0, spec[5] / 2.0
