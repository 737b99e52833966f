"""The two device cameras in CARLA and the warp of their images into the model frames.

CARLA cameras are pinhole: the road camera matches the comma 3/3X road camera (1928x1208, f = 2648 px,
fov about 40 degrees); the wide camera has the same size and f = 567 px (fov about 119 degrees), while the
device's wide lens is a fisheye (the warp here is the pinhole one of the contract). Both sit at the
windshield, ``CAMERA_HEIGHT_M`` above the road, looking straight ahead (zero mount calibration).
"""

from __future__ import annotations

import numpy as np

from ...contract import camera

# the road image is averaged 2x2 first (2648 px -> 1324 px focal), then sampled bilinearly into medmodel
# (910 px): no aliasing of lane markings; pixel centres of the halved image sit at old 2i + 0.5
_HALF_ROAD = camera.CameraModel("c3_road_half", camera.C3_ROAD.width_px // 2, camera.C3_ROAD.height_px // 2,
                                camera.C3_ROAD.focal_px / 2, (camera.C3_ROAD.cx_px - 0.5) / 2,
                                (camera.C3_ROAD.cy_px - 0.5) / 2)
ROAD_WARP = camera.warp_matrix(None, _HALF_ROAD, camera.MEDMODEL)
WIDE_WARP = camera.warp_matrix(None, camera.C3_WIDE, camera.SBIGMODEL)
_ROAD = camera.BilinearWarp(ROAD_WARP, _HALF_ROAD.width_px, _HALF_ROAD.height_px)
_WIDE = camera.BilinearWarp(WIDE_WARP, camera.C3_WIDE.width_px, camera.C3_WIDE.height_px)


def _halve(img: np.ndarray) -> np.ndarray:
    """2x2 box average (rounded) of an (H, W, C) uint8 image with even H and W."""
    acc = img[0::2, 0::2].astype(np.uint16) + img[1::2, 0::2] + img[0::2, 1::2] + img[1::2, 1::2]
    return ((acc + 2) // 4).astype(np.uint8)


def road_to_model(rgb: np.ndarray) -> np.ndarray:
    """(256, 512, C) medmodel frame of a (1208, 1928, C) road camera image (any channel order)."""
    return _ROAD(_halve(rgb))


def wide_to_model(rgb: np.ndarray) -> np.ndarray:
    """(256, 512, C) sbigmodel frame of a (1208, 1928, C) wide camera image (any channel order)."""
    return _WIDE(rgb)
