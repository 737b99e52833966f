"""Sensor data keyed by frame number: one queue per sensor, filled by the client's callback thread."""

from __future__ import annotations

import queue
import time

import numpy as np

from ...errors import SimulatorError


class SensorFrameError(SimulatorError):
    """A sensor's data for a frame did not come (late or skipped): the episode is not written."""


class SensorQueue:
    """Receives a sensor's data (``listen`` callback) and hands out exactly the frame asked for.

    Data of older frames (before the tick asked about) are dropped; data of a newer frame means the asked
    frame never came: that is an error, never a silent duplicate of another frame.
    """

    def __init__(self, name: str):
        self.name = name
        self._queue: queue.Queue = queue.Queue()

    def __call__(self, data) -> None:  # the listen callback, called from the client's thread
        self._queue.put(data)

    def get(self, frame: int, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            try:
                data = self._queue.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                raise SensorFrameError(f"sensor {self.name!r} delivered nothing for frame {frame} within "
                                     f"{timeout_s:g} s; the server may be overloaded (lower the quality or "
                                     f"the number of workers)") from None
            if data.frame < frame:
                continue
            if data.frame > frame:
                raise SensorFrameError(f"sensor {self.name!r} skipped frame {frame} (next data is frame "
                                     f"{data.frame}); the episode is not written")
            return data


def image_bgra(image) -> np.ndarray:
    """(H, W, 4) uint8 BGRA view of a CARLA image's buffer (no copy; warp first, reorder the small result)."""
    return np.frombuffer(image.raw_data, dtype=np.uint8).reshape(image.height, image.width, 4)
