"""Choosing blueprints by their attributes and spawn points by the lanes around them.

Blueprint ids differ between CARLA versions (0.10.0 has few vehicles, with other names), so vehicles are
chosen by attributes: four wheels, ``base_type`` car (when the version has it), a preference for mid-size
sedans for the ego, and any four-wheeled vehicle as the last fallback.
"""

from __future__ import annotations

import math

import numpy as np

from ...contract import camera
from ...errors import SimulatorError
from .geometry import is_same_direction_driving, neighbours
from .versions import SpawnRule

EGO_PREFERRED = ("lincoln.mkz", "tesla.model3", "toyota.prius", "audi.a2", "dodge.charger", "mini.cooper",
                 "nissan.patrol")
CAR_TYPES = ("car",)
CURVE_LOOKAHEAD_M = 150.0
LOOKAHEAD_STEP_M = 5.0
ROAD_CAMERA_FOV_DEG = math.degrees(2 * math.atan(camera.C3_ROAD.width_px / 2 / camera.C3_ROAD.focal_px))
WIDE_CAMERA_FOV_DEG = math.degrees(2 * math.atan(camera.C3_WIDE.width_px / 2 / camera.C3_WIDE.focal_px))
CAMERA_MOUNT_X_M = 0.8  # ahead of the vehicle's origin, at the windshield


def _attr(bp, name: str, default: str = "") -> str:
    """An attribute's value as text (each typed accessor raises "bad attribute cast" for the other types)."""
    if not bp.has_attribute(name):
        return default
    attribute = bp.get_attribute(name)
    for cast in (attribute.as_str, attribute.as_int, attribute.as_float, attribute.as_bool):
        try:
            return str(cast())
        except RuntimeError:
            continue
    return default


def four_wheelers(library, cars_only: bool = True) -> list:
    """Vehicle blueprints with four wheels (and base_type car when the version has the attribute)."""
    out = []
    for bp in library.filter("vehicle.*"):
        if _attr(bp, "number_of_wheels", "4") != "4":
            continue
        base = _attr(bp, "base_type").lower()
        if cars_only and base and base not in CAR_TYPES:
            continue
        out.append(bp)
    if not out and cars_only:
        return four_wheelers(library, cars_only=False)
    return sorted(out, key=lambda bp: bp.id)


def ego_blueprint(library):
    cars = four_wheelers(library)
    if not cars:
        raise SimulatorError("the CARLA server's blueprint library has no four-wheeled vehicle")
    for wanted in EGO_PREFERRED:
        for bp in cars:
            if wanted in bp.id:
                return bp
    return cars[0]


def camera_blueprint(library, image_w: int, image_h: int, fov_deg: float):
    """An RGB camera blueprint at the device camera's size and field of view (pinhole)."""
    bp = library.find("sensor.camera.rgb")
    settings = {"image_size_x": str(image_w), "image_size_y": str(image_h), "fov": f"{fov_deg:.4f}",
                "sensor_tick": "0.0", "motion_blur_intensity": "0.0"}
    for key, value in settings.items():
        if bp.has_attribute(key):
            bp.set_attribute(key, value)
    return bp


def set_role(bp, role: str) -> None:
    if bp.has_attribute("role_name"):
        bp.set_attribute("role_name", role)


# --- spawn points -------------------------------------------------------------------------------------
def _same_direction_lanes(w) -> int:
    n = 1
    for side in (-1, 1):
        for lane in neighbours(w, side):
            if not is_same_direction_driving(w, lane):
                break
            n += 1
    return n


def describe_spawn(carla_map, transform) -> dict:
    """Lanes, distance to the next junction and heading change ahead of a spawn point."""
    w = carla_map.get_waypoint(transform.location)
    info = {"lanes": _same_direction_lanes(w), "junction_m": math.inf, "heading_change_deg": 0.0}
    if w.is_junction:
        info["junction_m"] = 0.0
        return info
    cur, yaw0, travelled = w, w.transform.rotation.yaw, 0.0
    while travelled < max(CURVE_LOOKAHEAD_M, 250.0):
        nxt = cur.next(LOOKAHEAD_STEP_M)
        if not nxt:
            break
        cur, travelled = nxt[0], travelled + LOOKAHEAD_STEP_M
        if cur.is_junction and math.isinf(info["junction_m"]):
            info["junction_m"] = travelled
            break
        if travelled <= CURVE_LOOKAHEAD_M:
            change = abs((cur.transform.rotation.yaw - yaw0 + 180.0) % 360.0 - 180.0)
            info["heading_change_deg"] = max(info["heading_change_deg"], change)
    return info


def fits(info: dict, rule: SpawnRule) -> bool:
    if not rule.min_lanes <= info["lanes"] <= rule.max_lanes:
        return False
    near, far = rule.junction_ahead_m or (0.0, float("inf"))
    if not near <= info["junction_m"] <= far:
        return False
    return info["junction_m"] >= rule.clear_ahead_m and info["heading_change_deg"] >= rule.min_heading_change_deg


def choose_spawns(carla_map, rule: SpawnRule, rng: np.random.Generator) -> tuple[list, SpawnRule]:
    """Spawn points fitting ``rule`` in a seeded order, relaxing the rule until some fit; and the rule used."""
    points = list(carla_map.get_spawn_points())
    if not points:
        raise SimulatorError("the CARLA map has no spawn points")
    infos = [describe_spawn(carla_map, p) for p in points]
    while True:
        ok = [p for p, info in zip(points, infos) if fits(info, rule)]
        if ok or rule == SpawnRule():
            break
        rule = rule.relaxed()
    ok = ok or points
    order = rng.permutation(len(ok))
    return [ok[i] for i in order], rule


def nearest_spawns(points: list, origin, radius_m: float, exclude_m: float = 15.0) -> list:
    """Spawn points within ``radius_m`` of ``origin`` (a CARLA location), nearest first, not on top of it."""
    d = [(p.location.distance(origin), i) for i, p in enumerate(points)]
    return [points[i] for dist, i in sorted(d) if exclude_m <= dist <= radius_m]
