"""The two device cameras in CARLA and the warp of their images into the model frames.

CARLA cameras are pinhole: the road camera matches the comma 3/3X road camera (1928x1208, f = 2648 px,
fov about 40 degrees); the wide camera has the same size and f = 567 px (fov about 119 degrees), while the
device's wide lens is a fisheye (the warp here is the pinhole one of the contract). Both sit at the
windshield, ``CAMERA_HEIGHT_M`` above the road, looking straight ahead (zero mount calibration).
"""

from __future__ import annotations

import numpy as np

from ...contract import camera, yuv

# the road image is averaged 2x2 first (2648 px -> 1324 px focal), then sampled bilinearly into medmodel
# (910 px): no aliasing of lane markings; pixel centres of the halved image sit at old 2i + 0.5
_HALF_ROAD = camera.CameraModel("c3_road_half", camera.C3_ROAD.width_px // 2, camera.C3_ROAD.height_px // 2,
                                camera.C3_ROAD.focal_px / 2, (camera.C3_ROAD.cx_px - 0.5) / 2,
                                (camera.C3_ROAD.cy_px - 0.5) / 2)
ROAD_WARP = camera.warp_matrix(None, _HALF_ROAD, camera.MEDMODEL)
WIDE_WARP = camera.warp_matrix(None, camera.C3_WIDE, camera.SBIGMODEL)


def _halve(rgb: np.ndarray) -> np.ndarray:
    """2x2 box average of an (H, W, 3) uint8 image with even H and W."""
    acc = rgb[0::2, 0::2].astype(np.uint16) + rgb[1::2, 0::2] + rgb[0::2, 1::2] + rgb[1::2, 1::2]
    return ((acc + 2) // 4).astype(np.uint8)


def road_to_model(rgb: np.ndarray) -> np.ndarray:
    """(256, 512, 3) medmodel frame of a (1208, 1928, 3) road camera image."""
    return camera.warp_image(_halve(rgb), ROAD_WARP, method="bilinear")


def wide_to_model(rgb: np.ndarray) -> np.ndarray:
    """(256, 512, 3) sbigmodel frame of a (1208, 1928, 3) wide camera image."""
    return camera.warp_image(rgb, WIDE_WARP, method="bilinear")


def pack_block(road: np.ndarray, wide: np.ndarray) -> dict[str, np.ndarray]:
    """Model-frame RGB blocks (N, 256, 512, 3) -> the shard's 6-channel YUV frames."""
    return {"img": yuv.rgb_to_6ch(road), "big_img": yuv.rgb_to_6ch(wide)}


def camera_attrs(mount_x_m: float, mount_z_m: float) -> dict:
    def cam(model: camera.CameraModel) -> dict:
        return {"name": model.name, "width_px": model.width_px, "height_px": model.height_px,
                "focal_px": model.focal_px, "cx_px": model.cx_px, "cy_px": model.cy_px}

    return {
        "img": {"source": cam(camera.C3_ROAD), "model_frame": cam(camera.MEDMODEL)},
        "big_img": {"source": cam(camera.C3_WIDE), "model_frame": cam(camera.SBIGMODEL),
                    "lens": "pinhole (the device's wide lens is fisheye)"},
        "mount_m": {"x": mount_x_m, "z": mount_z_m},
        "height_m": camera.CAMERA_HEIGHT_M,
        "device_from_calib_rpy": [0.0, 0.0, 0.0],
        "wide_from_device_rpy": [0.0, 0.0, 0.0],
    }
