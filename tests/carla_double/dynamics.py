"""Vehicle motion: the Traffic Manager's autopilot and a kinematic bicycle model for ``apply_control``.

Autopilot (per tick, vehicles in id order, so runs with the same seeds are identical):

* the vehicle is tracked as (lane, road s, lateral offset); it follows its lane's centre (a lateral offset,
  e.g. after being put on autopilot off-centre, decays with a 1 s time constant);
* speed: ``set_desired_speed`` (km/h) if given, else the road's speed limit lowered by the vehicle's (or the
  global, default 30 %) percentage speed difference; longitudinal control is IDM with the TM's distance to the
  leading vehicle (default 2.5 m) as the standstill gap; a dead end is a standing obstacle;
* junctions: the next entry of ``set_route`` ('Left' / 'Right' / 'Straight'), else a choice by the TM's random
  generator (``set_random_device_seed``; unseeded TMs draw their seed from the OS, as the real one does);
* lane changes take 3 s: ``force_lane_change`` (True = right, False = left), ``random_left/right_lanechange_percentage``
  (a chance per tick), and ``auto_lane_change`` around a slower leader; the target lane must be free;
* ``update_vehicle_lights``: blinkers for lane changes and turns, brake lights when braking, low beams at night;
* ``get_control`` reports throttle/brake from the sign of the acceleration and the steer of the path's curvature.

Vehicles spawned above the road fall onto it (gravity); vehicles without autopilot stay put unless driven with
``apply_control`` (bicycle model: 3.5 m/s^2 full throttle, 8 m/s^2 full brake, 70 degrees full steer).
"""

from __future__ import annotations

import math
import os
import random

import numpy as np

from .enums import LaneType, VehicleLightState
from .roads import advance

A_MAX, B_COMF, T_HEADWAY, LC_SECONDS = 2.0, 3.0, 1.2, 3.0
_L = VehicleLightState


class TMState:
    """One Traffic Manager (per port) and its parameters."""

    def __init__(self, port: int):
        self.port, self.synchronous, self.seed, self.alive = port, False, None, True
        self.rng = random.Random(int.from_bytes(os.urandom(8), "little"))
        self.global_distance, self.global_speed_pct, self.global_lane_offset = 2.5, 30.0, 0.0
        self.hybrid, self.hybrid_radius, self.osm, self.respawn = False, 50.0, False, False
        self.vehicles: dict[int, dict] = {}

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)
        self.rng = random.Random(self.seed)

    def params(self, actor_id: int) -> dict:
        p = self.vehicles.get(actor_id)
        if p is None:
            p = self.vehicles[actor_id] = dict(
                speed_pct=None,
                desired_speed=None,
                auto_lane_change=True,
                distance=None,
                ignore_lights=0.0,
                ignore_signs=0.0,
                ignore_vehicles=0.0,
                ignore_walkers=0.0,
                random_left=0.0,
                random_right=0.0,
                keep_right=0.0,
                update_lights=False,
                route=[],
                path=[],
                lane_offset=0.0,
                force_lc=None,
            )
        return p


class Drive:
    """Autopilot state of one vehicle."""

    __slots__ = ("lane", "s", "lat", "lc", "choice", "v", "cooldown", "entry")  # entry: metres to a junction

    def __init__(self):
        self.lane, self.s, self.lat, self.lc, self.choice = None, 0.0, 0.0, None, {}
        self.v, self.cooldown, self.entry = 0.0, 0.0, None


def _chooser(tm: TMState, p: dict, d: Drive):
    def choose(lane, options):
        c = d.choice.get(lane.key)
        if c is None:
            if p["route"]:
                want = p["route"].pop(0)
                c = next((o for o in options if o.turn == want), None)
            if c is None:
                c = options[tm.rng.randrange(len(options))]
            d.choice[lane.key] = c
        return c

    return choose


def _path(d: Drive, length: float, choose, step: float = 3.0):
    """Lane-centre points ahead: (xs, ys, dist, lanes) and the distance to a dead end (or None)."""
    xs, ys, dist, lanes, entry = [], [], [], [], None
    lane, s, travelled = d.lane, d.s, 0.0
    while travelled < length:
        nxt = advance(lane, s, step, choose)
        if not nxt:
            d.entry = entry
            return xs, ys, dist, lanes, travelled + lane.remaining(s)
        nlane, s = nxt[0]
        if entry is None and nlane.road.is_junction and not lane.road.is_junction:
            entry = travelled + step - abs(s - nlane.start_s())
        lane, travelled = nlane, travelled + step
        x, y, _, _, _ = lane.centre(s)
        xs.append(x), ys.append(y), dist.append(travelled), lanes.append(lane)
    d.entry = entry  # distance to the next junction's entry (None: none ahead)
    return xs, ys, dist, lanes, None


def _leader(a, others, xs, ys, dist, lanes):
    """(gap, speed along the path) of the nearest vehicle on the path ahead, or (None, 0)."""
    if not xs or not others:
        return None, 0.0
    px, py = np.array(xs), np.array(ys)
    best = (None, 0.0)
    for o in others:
        dd = np.hypot(px - o.x, py - o.y)
        i = int(np.argmin(dd))
        if dd[i] > lanes[i].width / 2.0 + 0.5 * o.extent[1]:
            continue
        j = min(i + 1, len(xs) - 1)
        k = max(j - 1, 0)
        hx, hy = px[j] - px[k], py[j] - py[k]
        n = math.hypot(hx, hy) or 1.0
        along = dist[i] + ((o.x - px[i]) * hx + (o.y - py[i]) * hy) / n
        if along <= 0.0:
            continue
        gap = along - a.extent[0] - o.extent[0]
        if best[0] is None or gap < best[0]:
            best = (gap, (o.vel[0] * hx + o.vel[1] * hy) / n)
    return best


def _idm(v, v0, gap, v_lead, s0):
    acc = A_MAX * (1.0 - (v / max(v0, 0.1)) ** 4)
    if gap is not None:
        s_star = s0 + v * T_HEADWAY + v * (v - v_lead) / (2.0 * math.sqrt(A_MAX * B_COMF))
        acc -= A_MAX * (max(s_star, 0.0) / max(gap, 0.1)) ** 2
    return max(-8.0, min(A_MAX, acc))


def _junction_stop(server, a, d: Drive, others, lanes, dist):
    """Gap to the entry of the junction ahead when another vehicle is inside it (first come, first served;
    vehicles coming from the same lane may follow), else None."""
    if d.lane.road.is_junction:
        return None
    k = next((i for i, ln in enumerate(lanes) if ln.road.is_junction), None)
    if k is None or d.entry is None or d.entry > 10.0 + d.v * d.v / 4.0:
        return None
    stop = d.entry - a.extent[0] - 1.0
    if stop < 0.5:
        return None  # too close to stop: committed
    entry, jid = (lanes[k - 1] if k > 0 else d.lane), lanes[k].road.junction_id
    j, claims = server.network.junctions[jid], server.junction_claims
    claim = claims.get(jid)
    if claim is not None and claim[0] != a.id and claim[1] is not entry:
        holder = server.actors.get(claim[0])
        if holder is not None and holder.alive and holder.autopilot_port is not None:
            return stop
    for o in others:
        if o is a:
            continue
        ol = o.drive.lane if o.autopilot_port is not None else None
        if ol is not None:
            if ol.road.junction_id == jid and not (ol.pred and ol.pred[0] is entry):
                return stop
        elif abs(o.x - j.cx) < j.half and abs(o.y - j.cy) < j.half:
            return stop
    claims[jid] = (a.id, entry)
    return None


def _free(lane, s, a, others) -> bool:
    x, y, _, _, _ = lane.centre(s)
    return all(math.hypot(o.x - x, o.y - y) > 12.0 for o in others)


def _start_lc(d: Drive, a, others, left: bool) -> bool:
    lane = d.lane
    target = lane.neighbour(1 if left else -1)
    if (
        target is None
        or target.type != LaneType.Driving
        or target.direction != lane.direction
        or lane.road.is_junction
        or not _free(target, d.s, a, others)
    ):
        return False
    lat0 = lane.offset + d.lat - target.offset if lane.direction > 0 else target.offset - lane.offset + d.lat
    d.lane, d.lat, d.lc = target, lat0, [0.0, lat0, left]
    d.cooldown = 10.0
    return True


def _move(d: Drive, dist: float, choose, release) -> None:
    while dist > 1e-9:
        lane, s = d.lane, d.s
        offset = lane.offset + (d.lat if lane.direction > 0 else -d.lat)
        factor = max(0.2, 1.0 - offset * lane.road.hprime(s))
        rem = lane.remaining(s)
        if dist / factor <= rem:
            d.s = s + lane.direction * dist / factor
            return
        dist -= rem * factor
        if not lane.succ:
            d.s, d.v = lane.end_s(), 0.0
            return
        nxt = lane.succ[0] if len(lane.succ) == 1 else choose(lane, lane.succ)
        d.choice.pop(lane.key, None)
        if lane.road.is_junction and not nxt.road.is_junction:
            release(lane.road.junction_id)
        d.lane, d.s = nxt, nxt.start_s()


def autopilot_step(server, tm: TMState, a, dt: float, others: list) -> None:
    d, p = a.drive, tm.params(a.id)
    if d.lane is None:
        found = server.network.project(a.x, a.y, a.z - a.z_off, int(LaneType.Driving))
        if found is None:
            return
        d.lane, d.s = found[0], found[1]
        x, y, _, yaw, _ = d.lane.centre(d.s)
        d.lat = -(a.x - x) * math.sin(math.radians(yaw)) + (a.y - y) * math.cos(math.radians(yaw))
        d.v = math.hypot(a.vel[0], a.vel[1])
    choose = _chooser(tm, p, d)
    limit_kmh = d.lane.road.speed_limit
    v0 = (
        p["desired_speed"]
        if p["desired_speed"] is not None
        else limit_kmh * (1.0 - (p["speed_pct"] if p["speed_pct"] is not None else tm.global_speed_pct) / 100.0)
    ) / 3.6
    near = [o for o in others if o is not a and math.hypot(o.x - a.x, o.y - a.y) < 60.0 + d.v * 4.0]
    xs, ys, dist, lanes, dead_end = _path(d, 50.0 + d.v * 4.0, choose)
    gap, v_lead = _leader(a, near, xs, ys, dist, lanes)
    if gap is not None and tm.rng.random() * 100.0 < p["ignore_vehicles"]:
        gap = None
    if dead_end is not None and (gap is None or dead_end - a.extent[0] < gap):
        gap, v_lead = dead_end - a.extent[0] - 1.0, 0.0
    stop = _junction_stop(server, a, d, others, lanes, dist)
    if stop is not None and (gap is None or stop < gap):
        gap, v_lead = stop, 0.0
    s0 = p["distance"] if p["distance"] is not None else tm.global_distance
    acc = _idm(d.v, v0, gap, v_lead, s0)
    d.cooldown = max(0.0, d.cooldown - dt)
    if d.lc is None and not d.lane.road.is_junction:
        if p["force_lc"] is not None:
            left = not p["force_lc"]  # direction True = the lane on the right, as LibCarla's LocalizationStage
            if _start_lc(d, a, near, left) or d.lane.neighbour(1 if left else -1) is None:
                p["force_lc"] = None
        elif p["random_left"] and tm.rng.random() * 100.0 < p["random_left"]:
            _start_lc(d, a, near, True)
        elif p["random_right"] and tm.rng.random() * 100.0 < p["random_right"]:
            _start_lc(d, a, near, False)
        elif (
            p["auto_lane_change"]
            and d.cooldown == 0.0
            and gap is not None
            and gap < 25.0
            and v_lead < 0.8 * v0
            and v0 - v_lead > 2.0
        ):
            _start_lc(d, a, near, True) or _start_lc(d, a, near, False)
    v_new = max(0.0, d.v + acc * dt)
    old_lat = d.lat

    def release(jid):
        if server.junction_claims.get(jid, (None,))[0] == a.id:
            del server.junction_claims[jid]

    _move(d, 0.5 * (d.v + v_new) * dt, choose, release)
    d.v = v_new
    if d.lc is not None:
        d.lc[0] += dt
        u = min(1.0, d.lc[0] / LC_SECONDS)
        d.lat = d.lc[1] * (1.0 - u * u * u * (10.0 - 15.0 * u + 6.0 * u * u))
        if u >= 1.0:
            d.lat, d.lc = 0.0, None
    else:
        d.lat *= math.exp(-dt / 1.0)
    x, y, z, yaw, pitch = d.lane.centre(d.s)
    lat_rate = (d.lat - old_lat) / dt
    yaw_r = math.radians(yaw)
    x, y = x - math.sin(yaw_r) * d.lat, y + math.cos(yaw_r) * d.lat
    yaw += math.degrees(math.atan2(lat_rate, max(d.v, 1.0)))
    pitch = pitch - 360.0 if pitch > 180.0 else pitch
    set_pose(a, dt, x, y, z, yaw, pitch, d.v, lat_rate)
    steer_curv = d.lane.road.hprime(d.s) * (1 if d.lane.direction > 0 else -1)
    wheelbase = 1.2 * a.extent[0]
    a.control.steer = max(-1.0, min(1.0, math.degrees(math.atan(wheelbase * steer_curv)) / 70.0))
    cruising = acc >= -0.05 and v0 > 0.1  # throttle and brake follow the sign of the acceleration
    a.control.throttle = min(1.0, max(0.0, 0.2 + 0.8 * acc / A_MAX + 0.004 * d.v)) if cruising else 0.0
    a.control.brake = 0.0 if cruising else min(1.0, max(0.02, -acc / 8.0))
    a.control.gear = 0 if d.v < 0.05 and a.control.throttle == 0.0 else min(5, 1 + int(d.v / 6.0))
    if p["update_lights"]:
        _lights(server, a, d, p, acc, lanes, dist)


def _lights(server, a, d, p, acc, lanes, dist) -> None:
    state = a.light_state & ~(int(_L.LeftBlinker) | int(_L.RightBlinker) | int(_L.Brake))
    turn = d.lane.turn
    if not turn:
        turn = next((ln.turn for ln, s in zip(lanes, dist) if ln.turn and s < 30.0), "")
    if d.lc is not None:
        turn = "Left" if d.lc[2] else "Right"
    if turn == "Left":
        state |= int(_L.LeftBlinker)
    elif turn == "Right":
        state |= int(_L.RightBlinker)
    if acc < -0.5:
        state |= int(_L.Brake)
    night = server.weather.sun_altitude_angle < 0.0 or server.weather.fog_density > 50.0
    state = state | int(_L.Position) | int(_L.LowBeam) if night else state & ~(int(_L.Position) | int(_L.LowBeam))
    a.light_state = state


def set_pose(a, dt, x, y, z_road, yaw, pitch, v, lat_rate) -> None:
    """Moves a vehicle and derives velocity, acceleration and angular velocity (deg/s) from the motion."""
    if a.z_off > 0.0:
        a.vz_fall -= 9.81 * dt
        a.z_off = max(0.0, a.z_off + a.vz_fall * dt)
        if a.z_off == 0.0:
            a.vz_fall = 0.0
    yr, pr = math.radians(yaw), math.radians(pitch)
    vel = (
        v * math.cos(yr) * math.cos(pr) - math.sin(yr) * lat_rate,
        v * math.sin(yr) * math.cos(pr) + math.cos(yr) * lat_rate,
        v * math.sin(pr) + a.vz_fall,
    )
    a.acc = tuple((n - o) / dt for n, o in zip(vel, a.vel))
    yaw_rate = ((yaw - a.yaw + 180.0) % 360.0 - 180.0) / dt
    pitch_rate = (pitch - a.pitch) / dt
    a.angvel = (0.0, pitch_rate, yaw_rate)
    a.vel = vel
    a.x, a.y, a.z, a.yaw, a.pitch, a.roll = x, y, z_road + a.z_off, (yaw + 180.0) % 360.0 - 180.0, pitch, 0.0
    a.odometer += v * dt


def manual_step(server, a, dt: float) -> None:
    """Kinematic bicycle model driven by the last applied VehicleControl."""
    c = a.control
    v = math.cos(math.radians(a.yaw)) * a.vel[0] + math.sin(math.radians(a.yaw)) * a.vel[1]
    sign = 1.0 if v >= 0 else -1.0
    acc = c.throttle * 3.5 * (-1.0 if c.reverse else 1.0) - sign * (c.brake * 8.0 + (6.0 if c.hand_brake else 0.0))
    acc -= 0.02 * v + (0.1 * sign if abs(v) > 0.01 else 0.0)
    v_new = v + acc * dt
    if v != 0.0 and v_new * v < 0.0 and not (c.reverse and c.throttle > 0):
        v_new = 0.0
    if abs(v_new) < 1e-3 and c.throttle == 0.0:
        v_new = 0.0
    delta = math.radians(70.0 * max(-1.0, min(1.0, c.steer)))
    yaw = a.yaw + math.degrees(v_new / (1.2 * a.extent[0]) * math.tan(delta) * dt)
    yr = math.radians(yaw)
    x, y = a.x + v_new * math.cos(yr) * dt, a.y + v_new * math.sin(yr) * dt
    z_road = a.z - a.z_off
    if v_new != 0.0:
        found = server.network.project(x, y, z_road, int(LaneType.Any))
        if found is not None and found[2] < 0.5:
            z_road = found[0].road.pose(found[1])[2]
    set_pose(a, dt, x, y, z_road, yaw, a.pitch, v_new, 0.0)
