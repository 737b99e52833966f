"""What every simulator backend stores about its camera frames: the camera description and the 6-channel packing."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from ..contract import camera, yuv


def camera_attrs(height_m: float = camera.CAMERA_HEIGHT_M, mount_rpy=(0.0, 0.0, 0.0), calib_rpy=(0.0, 0.0, 0.0),
                 wide_from_device_rpy=(0.0, 0.0, 0.0), **extra) -> dict:
    """Intrinsics and extrinsics of the simulated cameras, stored in every shard (plus backend-specific keys).

    ``height_m``: the camera above the road; ``mount_rpy``: the device's rotation in the car; ``calib_rpy``: the
    calibration the model frames were warped with (``device_from_calib``; labels are in the car's frame, so the
    model frames show it turned by ``calib_rpy - mount_rpy``); ``wide_from_device_rpy``: the wide camera against the
    road camera, as the ``wide_from_device_euler`` label gives it (rad, roll/pitch/yaw).
    """

    def cam(model: camera.CameraModel) -> dict:
        return asdict(model)

    return {
        "img": {"source": cam(camera.C3_ROAD), "model_frame": cam(camera.MEDMODEL)},
        "big_img": {"source": cam(camera.C3_WIDE), "model_frame": cam(camera.SBIGMODEL),
                    "lens": "pinhole (the device's wide lens is fisheye)"},
        **extra,
        "height_m": float(height_m),
        "mount_rpy": [float(a) for a in mount_rpy],
        "device_from_calib_rpy": [float(a) for a in calib_rpy],
        "wide_from_device_rpy": [float(a) for a in wide_from_device_rpy],
    }


def pack_frames(road_rgb: np.ndarray, wide_rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Model-frame RGB blocks (N, 256, 512, 3) -> the shard's 6-channel YUV frames ``img`` and ``big_img``."""
    return {"img": yuv.rgb_to_6ch(road_rgb), "big_img": yuv.rgb_to_6ch(wide_rgb)}
