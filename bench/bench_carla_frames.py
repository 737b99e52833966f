"""Time what the CARLA collector does per frame on the client side, without a server.

Per recorded frame the collector turns two 1928x1208 BGRA camera buffers into model frames (road: 2x2 average,
then bilinear warp into medmodel; wide: bilinear warp into sbigmodel; channels reordered on the small result)
and packs them into 6-channel YUV. This times those steps on random images, and the contract's generic
``warp_image(..., "bilinear")`` on RGB copies for comparison (the collector precomputes its sampling taps once).

Example (one core)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_carla_frames.py --frames 40

Not a test: the numbers depend on the machine and its load; the ratio is the steadier figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from sunnypilot_training.collector.carla_backend import cameras
from sunnypilot_training.collector.carla_backend.sensors import image_bgra
from sunnypilot_training.collector.frames import pack_frames
from sunnypilot_training.contract import camera


class _Image:  # what image_bgra reads of a carla.Image
    def __init__(self, bgra: np.ndarray):
        self.height, self.width = bgra.shape[:2]
        self.raw_data = bgra.tobytes()


def _ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    h, w = camera.C3_ROAD.height_px, camera.C3_ROAD.width_px
    raw = _Image(rng.integers(0, 256, (h, w, 4), dtype=np.uint8))
    bgra = image_bgra(raw)
    rgb = np.ascontiguousarray(bgra[..., 2::-1])
    n = args.frames
    road = _ms(lambda: cameras.road_to_model(image_bgra(raw))[..., 2::-1], n)
    wide = _ms(lambda: cameras.wide_to_model(image_bgra(raw))[..., 2::-1], n)
    block = np.stack([cameras.road_to_model(rgb)] * 40)
    pack = _ms(lambda: pack_frames(block, block), max(3, n // 10)) / 40
    generic_road = _ms(lambda: camera.warp_image(cameras._halve(rgb), cameras.ROAD_WARP, method="bilinear"), 5)
    generic_wide = _ms(lambda: camera.warp_image(rgb, cameras.WIDE_WARP, method="bilinear"), 5)
    total = road + wide + pack
    print(f"road image -> medmodel {road:.1f} ms; wide image -> sbigmodel {wide:.1f} ms; pack {pack:.1f} ms/frame")
    print(f"client-side total {total:.1f} ms/frame = {1000 / total:.0f} frames/s on one core")
    print(f"precomputed vs generic bilinear warp: road {generic_road / road:.1f}x, wide {generic_wide / wide:.1f}x "
          f"faster")


if __name__ == "__main__":
    main()
