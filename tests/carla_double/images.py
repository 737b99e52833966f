"""Sensor data: ``Image`` (BGRA, what ``sensor.camera.rgb`` delivers), ``CollisionEvent``, and the renderer.

The image is synthetic but follows the camera's pose: sky above the horizon (its row moves with pitch), grey
ground below, the ego lane's road surface and its lines converging to a vanishing point that moves with the
camera's yaw relative to the lane and its lateral offset, brightness from the weather. The top-left 16 x 16
pixels encode the frame number (B = bits 0-7, G = 8-15, R = 16-23) so tests can check images against frames.
Rendering a 1928 x 1208 image takes a few milliseconds (per-row colour table broadcast, per-row spans).
"""

from __future__ import annotations

import math

import numpy as np

from .enums import ColorConverter

_NO_INIT = "This class cannot be instantiated from Python"


class SensorData:
    __slots__ = ("_frame", "_timestamp", "_transform")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(_NO_INIT)

    frame = property(lambda self: self._frame)
    frame_number = property(lambda self: self._frame)
    timestamp = property(lambda self: self._timestamp)
    transform = property(lambda self: self._transform)


class Image(SensorData):
    __slots__ = ("_width", "_height", "_fov", "_array")

    @classmethod
    def _make(cls, frame, timestamp, transform, fov, array: np.ndarray) -> Image:
        img = object.__new__(cls)
        img._frame, img._timestamp, img._transform = frame, timestamp, transform
        img._height, img._width = array.shape[:2]
        img._fov, img._array = float(fov), array
        array.setflags(write=False)
        return img

    width = property(lambda self: self._width)
    height = property(lambda self: self._height)
    fov = property(lambda self: self._fov)

    @property
    def raw_data(self):
        """A read-only buffer of height * width * 4 bytes, BGRA (np.frombuffer works on it)."""
        return memoryview(self._array.reshape(-1))

    def __len__(self):
        return self._width * self._height

    def save_to_disk(self, path, color_converter=ColorConverter.Raw):
        import matplotlib.image

        matplotlib.image.imsave(str(path), self._array[:, :, 2::-1])
        return str(path)

    def __str__(self):
        return f"Image(frame={self._frame}, timestamp={self._timestamp:.6f}, size={self._width}x{self._height})"


class CollisionEvent(SensorData):
    __slots__ = ("_actor", "_other", "_impulse")

    @classmethod
    def _make(cls, frame, timestamp, transform, actor, other, impulse) -> CollisionEvent:
        ev = object.__new__(cls)
        ev._frame, ev._timestamp, ev._transform = frame, timestamp, transform
        ev._actor, ev._other, ev._impulse = actor, other, impulse
        return ev

    actor = property(lambda self: self._actor)
    other_actor = property(lambda self: self._other)
    normal_impulse = property(lambda self: self._impulse)


def _bgra(b, g, r) -> int:
    return int(b) | int(g) << 8 | int(r) << 16 | 255 << 24


def _rows(height: int, horizon: float, sun_alt: float, cloud: float, wet: float) -> np.ndarray:
    """uint32 BGRA colour of every row: a sky gradient above the horizon, ground below."""
    light = 0.25 + 0.75 * max(0.0, min(1.0, (sun_alt + 10.0) / 55.0))
    grey = cloud / 100.0
    rows = np.arange(height, dtype=np.float32)
    t = np.clip((horizon - rows) / max(horizon, 1.0), 0.0, 1.0)
    sky = np.stack([235 - 5 * t, 215 - 45 * t, 190 - 80 * t], 1) * (1 - grey) + 200.0 * grey
    ground = np.stack([np.full(height, 95.0), np.full(height, 120.0), np.full(height, 110.0)], 1)
    colour = np.clip(np.where((rows < horizon)[:, None], sky, ground * (1.0 - 0.25 * wet / 100.0)) * light, 0, 255)
    c = colour.astype(np.uint32)
    return c[:, 0] | c[:, 1] << 8 | c[:, 2] << 16 | np.uint32(255 << 24)


def render(cap: dict) -> np.ndarray:
    """(H, W, 4) uint8 BGRA image of a capture record made at the tick (see the server's captures)."""
    w, h, fov = cap["width"], cap["height"], cap["fov"]
    f = w / (2.0 * math.tan(math.radians(fov) / 2.0))
    horizon = h / 2.0 + f * math.tan(math.radians(cap["pitch"]))
    img = np.empty((h, w), np.uint32)
    img[:] = _rows(h, horizon, cap["sun_alt"], cap["cloud"], cap["wet"])[:, None]
    cam_h = cap.get("cam_height")
    if cam_h is not None and cam_h > 0.2 and horizon < h:
        cx = w / 2.0 - f * math.tan(math.radians(cap["yaw_rel"]))
        road = _bgra(72, 70, 70) if cap["wet"] < 50 else _bgra(52, 50, 50)
        line = _bgra(230, 230, 230)
        lat, lw = cap["lateral"], cap["lane_width"]
        edges = (-lat - lw / 2.0, -lat + lw / 2.0)  # the lane's edges, metres right of the camera
        phase = cap.get("phase", 0.0)
        marks = cap.get("marks", (1, 2))  # left, right edge: 0 none, 1 broken, 2 solid
        for y in range(max(int(math.ceil(horizon)) + 1, 0), h):
            k = (y - horizon) / cam_h  # pixels per metre on the road at this row
            a, b = int(cx + (edges[0] - lw) * k), int(cx + (edges[1] + lw) * k)
            if b <= 0 or a >= w:
                continue
            img[y, max(a, 0) : min(b, w)] = road
            dashed = ((f / k + phase) % 12.0) < 6.0
            half = max(1, int(0.075 * k))
            for e, kind in zip(edges, marks):
                if kind == 0 or (kind == 1 and not dashed):
                    continue
                u = int(cx + e * k)
                if -half < u < w + half:
                    img[y, max(u - half, 0) : min(u + half, w)] = line
    frame = cap["frame"]
    img[:16, :16] = _bgra(frame & 255, (frame >> 8) & 255, (frame >> 16) & 255)
    return img.view(np.uint8).reshape(h, w, 4)


def frame_of(image) -> int:
    """The frame number encoded in an image's corner (test helper)."""
    px = np.frombuffer(image.raw_data, np.uint8)[:4]
    return int(px[0]) | int(px[1]) << 8 | int(px[2]) << 16
