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


class FixedWarp:
    """Bilinear warp by a fixed matrix with the sampling taps computed once (the contract warp, ~10x faster).

    Same result as ``camera.warp_image(img, M, method="bilinear", fill=0)`` up to float rounding: neighbours
    outside the image count as 0.
    """

    def __init__(self, M: np.ndarray, src_h: int, src_w: int):
        H, W = camera.MODEL_FRAME_HEIGHT_PX, camera.MODEL_FRAME_WIDTH_PX
        u = np.arange(W, dtype=np.float64)
        v = np.arange(H, dtype=np.float64)[:, None]
        w = M[2, 0] * u + M[2, 1] * v + M[2, 2]
        front = w > 1e-12
        w = np.where(front, w, 1.0)
        x = (M[0, 0] * u + M[0, 1] * v + M[0, 2]) / w  # (H, W) source pixel coordinates
        y = (M[1, 0] * u + M[1, 1] * v + M[1, 2]) / w
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        taps, weights = [], []
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                ix, iy = x0.astype(np.int64) + dx, y0.astype(np.int64) + dy
                ok = front & (ix >= 0) & (ix < src_w) & (iy >= 0) & (iy < src_h)
                taps.append(np.where(ok, iy * src_w + ix, 0).ravel())
                weights.append(np.where(ok, wx * wy, 0.0).ravel().astype(np.float32)[:, None])
        self.shape, self.src_shape = (H, W), (src_h, src_w)
        self.taps, self.weights = taps, weights

    def __call__(self, img: np.ndarray) -> np.ndarray:
        assert img.shape[:2] == self.src_shape, (img.shape, self.src_shape)
        flat = img.reshape(-1, img.shape[2])
        acc = flat[self.taps[0]] * self.weights[0]  # (H*W, C) float32
        for taps, weights in zip(self.taps[1:], self.weights[1:]):
            acc += flat[taps] * weights
        return np.clip(np.floor(acc + 0.5), 0, 255).astype(np.uint8).reshape(self.shape + (img.shape[2],))


_ROAD = FixedWarp(ROAD_WARP, _HALF_ROAD.height_px, _HALF_ROAD.width_px)
_WIDE = FixedWarp(WIDE_WARP, camera.C3_WIDE.height_px, camera.C3_WIDE.width_px)


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
