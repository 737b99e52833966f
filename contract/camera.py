"""Camera and frame math of the modeld contract: rotations, intrinsics, projection and the model-frame warp.

Frames (all right-handed, metres, origin at the road camera):

* **device frame** — FRD: x forward, y right, z down. This is the frame of the physical device.
* **calibrated frame** — also FRD, but aligned with the car rather than with the device: the device is
  mounted with a small rotation ``device_from_calib = rot_from_euler(rpy_calib)``, so
  ``p_device = device_from_calib @ p_calib``. All model outputs (lane lines, leads, plan) live here.
* **view frame** — the pinhole convention of a camera: x right, y down, z forward (optical axis).
  ``p_view = VIEW_FROM_DEVICE @ p_device``; pixels are ``K @ p_view`` divided by its z.

The "road frame" (x forward, y left, z up) is **not** used anywhere in this module; do not mix it in.

Euler angles are ``(roll, pitch, yaw)`` in radians with ``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``
(extrinsic x, then y, then z). In FRD, z points down, so a positive yaw turns +x towards +y (right)
and a positive pitch turns +x towards -z (nose up).

Pixels: ``(u, v)`` = (column, row), pixel centres at integer coordinates (as in ``cv2.warpPerspective``).
The device cameras put the principal point at ``(width / 2, height / 2)`` as openpilot does.

The model frames (``MEDMODEL`` for ``img``, ``SBIGMODEL`` for ``big_img``) are virtual pinhole cameras in
the calibrated frame; ``warp_matrix`` maps their pixels to pixels of a device camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ContractError

__all__ = [
    "CAMERA_HEIGHT_M",
    "MODEL_FRAME_WIDTH_PX",
    "MODEL_FRAME_HEIGHT_PX",
    "VIEW_FROM_DEVICE",
    "CameraModel",
    "C3_ROAD",
    "C3_WIDE",
    "C4_ROAD",
    "C4_WIDE",
    "MEDMODEL",
    "SBIGMODEL",
    "DEVICE_CAMERAS",
    "MODEL_CAMERAS",
    "rot_x",
    "rot_y",
    "rot_z",
    "rot_from_euler",
    "euler_from_rot",
    "project_points_device",
    "pixel_to_ray",
    "warp_matrix",
    "warp_image",
    "EDGE",
]

CAMERA_HEIGHT_M = 1.22  # road camera above the road surface
MODEL_FRAME_WIDTH_PX = 512
MODEL_FRAME_HEIGHT_PX = 256

# view (x right, y down, z forward) from device FRD (x forward, y right, z down)
VIEW_FROM_DEVICE = np.array(
    [
        [0.0, 1.0, 0.0],  # view x = device y (right)
        [0.0, 0.0, 1.0],  # view y = device z (down)
        [1.0, 0.0, 0.0],  # view z = device x (forward)
    ],
    dtype=np.float64,
)
VIEW_FROM_DEVICE.setflags(write=False)


@dataclass(frozen=True)
class CameraModel:
    """Pinhole intrinsics of a camera (device camera or virtual model frame); square pixels, no skew."""

    name: str
    width_px: int
    height_px: int
    focal_px: float
    cx_px: float
    cy_px: float

    def __post_init__(self) -> None:
        if self.width_px <= 0 or self.height_px <= 0:
            raise ContractError(
                f"CameraModel {self.name!r}: size {self.width_px}x{self.height_px} px; "
                "expected a positive width and height"
            )
        if not self.focal_px > 0:
            raise ContractError(
                f"CameraModel {self.name!r}: focal_px={self.focal_px}; expected a positive focal length in pixels"
            )

    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix (3, 3) float64 mapping view-frame points to homogeneous pixels."""
        return np.array(
            [[self.focal_px, 0.0, self.cx_px], [0.0, self.focal_px, self.cy_px], [0.0, 0.0, 1.0]],
            dtype=np.float64,
        )

    @property
    def size_px(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.width_px, self.height_px)

    def intrinsics_at(self, width_px: int) -> tuple[float, float, float]:
        """(focal, cx, cy) in pixels of this camera's image taken every ``width_px / self.width_px``-th pixel, e.g. a
        model frame's Y sub-grid Y[0::2, 0::2] (half the width: its pixel (r, c) is (2 r, 2 c) of the frame)."""
        scale = width_px / self.width_px
        return self.focal_px * scale, self.cx_px * scale, self.cy_px * scale


def _centred(name: str, width_px: int, height_px: int, focal_px: float) -> CameraModel:
    return CameraModel(name, width_px, height_px, focal_px, width_px / 2.0, height_px / 2.0)


C3_ROAD = _centred("c3_road", 1928, 1208, 2648.0)  # comma 3/3X road camera (fcam)
C3_WIDE = _centred("c3_wide", 1928, 1208, 567.0)  # comma 3/3X wide camera (ecam), treated as pinhole
C4_ROAD = _centred("c4_road", 1344, 760, 1141.5)  # comma four ("mici") road camera
C4_WIDE = _centred("c4_wide", 1344, 760, 425.25)  # comma four wide camera
MEDMODEL = CameraModel("medmodel", MODEL_FRAME_WIDTH_PX, MODEL_FRAME_HEIGHT_PX, 910.0, 256.0, 47.6)  # `img`
SBIGMODEL = CameraModel("sbigmodel", MODEL_FRAME_WIDTH_PX, MODEL_FRAME_HEIGHT_PX, 455.0, 256.0, 151.8)  # `big_img`

# device id -> (road camera, wide camera)
DEVICE_CAMERAS: dict[str, tuple[CameraModel, CameraModel]] = {
    "comma3x": (C3_ROAD, C3_WIDE),
    "comma4": (C4_ROAD, C4_WIDE),
}
# vision-model input name -> model-frame intrinsics (`img` is warped from the road camera, `big_img` from the wide)
MODEL_CAMERAS: dict[str, CameraModel] = {"img": MEDMODEL, "big_img": SBIGMODEL}


# ---------------------------------------------------------------------------------------------- rotations


def _rot(angle_rad, axis: int) -> np.ndarray:
    a = np.asarray(angle_rad, dtype=np.float64)  # () or (N,)
    if a.ndim > 1:
        raise ContractError(f"rotation angle has shape {a.shape}; expected a scalar or (N,)")
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]  # the plane rotated: +i turns towards +j
    R = np.zeros(a.shape + (3, 3))  # (..., 3, 3)
    R[..., axis, axis] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = -s
    R[..., j, i] = s
    return R


def rot_x(angle_rad) -> np.ndarray:
    """Rotation about x (roll) by ``angle_rad``; scalar -> (3, 3), (N,) -> (N, 3, 3)."""
    return _rot(angle_rad, 0)


def rot_y(angle_rad) -> np.ndarray:
    """Rotation about y (pitch) by ``angle_rad``; scalar -> (3, 3), (N,) -> (N, 3, 3)."""
    return _rot(angle_rad, 1)


def rot_z(angle_rad) -> np.ndarray:
    """Rotation about z (yaw) by ``angle_rad``; in FRD a positive yaw turns +x towards +y (right)."""
    return _rot(angle_rad, 2)


def rot_from_euler(rpy_rad) -> np.ndarray:
    """``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`` from ``(roll, pitch, yaw)``: (3,) -> (3, 3), (N, 3) -> (N, 3, 3).

    Applied to a vector in the rotated frame it gives the vector in the reference frame, e.g.
    ``device_from_calib = rot_from_euler(rpy_calib)``.
    """
    rpy = np.asarray(rpy_rad, dtype=np.float64)
    if rpy.ndim not in (1, 2) or rpy.shape[-1] != 3:
        raise ContractError(f"rpy_rad has shape {rpy.shape}; expected (3,) or (N, 3) (roll, pitch, yaw in rad)")
    return rot_z(rpy[..., 2]) @ rot_y(rpy[..., 1]) @ rot_x(rpy[..., 0])  # (..., 3, 3)


def euler_from_rot(R) -> np.ndarray:
    """Inverse of :func:`rot_from_euler`: (3, 3) -> (3,), (N, 3, 3) -> (N, 3) ``(roll, pitch, yaw)`` in rad.

    Pitch is returned in [-pi/2, pi/2]; at gimbal lock (|pitch| = pi/2) roll and yaw are not unique.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim not in (2, 3) or R.shape[-2:] != (3, 3):
        raise ContractError(f"rotation has shape {R.shape}; expected (3, 3) or (N, 3, 3)")
    roll = np.arctan2(R[..., 2, 1], R[..., 2, 2])  # R21 = cp*sr, R22 = cp*cr
    pitch = np.arctan2(-R[..., 2, 0], np.hypot(R[..., 2, 1], R[..., 2, 2]))  # R20 = -sp
    yaw = np.arctan2(R[..., 1, 0], R[..., 0, 0])  # R10 = sy*cp, R00 = cy*cp
    return np.stack([roll, pitch, yaw], axis=-1)  # (..., 3)


# ---------------------------------------------------------------------------------------------- projection


def _check_camera(camera: object) -> CameraModel:
    if not isinstance(camera, CameraModel):
        raise ContractError(f"camera is a {type(camera).__name__}; expected a CameraModel (e.g. C3_ROAD, MEDMODEL)")
    return camera


def _view_from_calib(device_from_calib_rpy) -> np.ndarray:
    """(3, 3) view-from-calibrated rotation; ``None`` means the camera is aligned with the calibrated frame."""
    if device_from_calib_rpy is None:
        return VIEW_FROM_DEVICE.copy()
    rpy = np.asarray(device_from_calib_rpy, dtype=np.float64)
    if rpy.shape != (3,):
        raise ContractError(f"device_from_calib_rpy has shape {rpy.shape}; expected (3,) (roll, pitch, yaw in rad)")
    return VIEW_FROM_DEVICE @ rot_from_euler(rpy)


def project_points_device(
    points_device_m, camera: CameraModel, device_from_calib_rpy=None
) -> tuple[np.ndarray, np.ndarray]:
    """Project points given in the **calibrated** FRD frame (metres) into ``camera``'s pixels.

    With ``device_from_calib_rpy`` (roll, pitch, yaw in rad) the points are first rotated into the device
    frame (``p_device = rot_from_euler(rpy) @ p_calib``); with ``None`` the camera is aligned with the
    calibrated frame (as the model frames are).

    Returns ``(pixels_px (N, 2) as (u, v), in_front (N,) bool)``. Points at or behind the camera plane get
    ``in_front = False`` and NaN pixels. A single point of shape (3,) is accepted as (1, 3).
    """
    camera = _check_camera(camera)
    pts = np.asarray(points_device_m, dtype=np.float64)
    if pts.ndim == 1:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ContractError(f"points_device_m has shape {pts.shape}; expected (N, 3) (x fwd, y right, z down, m)")
    p_view = pts @ _view_from_calib(device_from_calib_rpy).T  # (N, 3)
    uvw = p_view @ camera.K.T  # (N, 3) homogeneous pixels
    in_front = p_view[:, 2] > 1e-9  # (N,)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels_px = uvw[:, :2] / uvw[:, 2:3]  # (N, 2)
    pixels_px[~in_front] = np.nan
    return pixels_px, in_front


def pixel_to_ray(pixels_px, camera: CameraModel, device_from_calib_rpy=None) -> np.ndarray:
    """Unit viewing rays (N, 3) in the calibrated FRD frame through pixels (N, 2) ``(u, v)`` of ``camera``.

    The inverse of :func:`project_points_device`: ``project(ray * d)`` returns the pixel for any ``d > 0``.
    """
    camera = _check_camera(camera)
    uv = np.asarray(pixels_px, dtype=np.float64)
    if uv.ndim == 1:
        uv = uv[None]
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ContractError(f"pixels_px has shape {uv.shape}; expected (N, 2) (u, v)")
    uv1 = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1)  # (N, 3)
    rays_view = uv1 @ np.linalg.inv(camera.K).T  # (N, 3), z = 1
    rays_calib = rays_view @ _view_from_calib(device_from_calib_rpy)  # (N, 3): R^T applied row-wise
    return rays_calib / np.linalg.norm(rays_calib, axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- warp


def warp_matrix(device_from_calib_rpy, camera: CameraModel, model: CameraModel) -> np.ndarray:
    """(3, 3) homography mapping homogeneous **model-frame** pixels to **camera** pixels.

    ``M = K_cam @ VIEW_FROM_DEVICE @ R(rpy) @ inv(K_model @ VIEW_FROM_DEVICE)`` (rotation only: the model
    frame is a virtual camera at the same place, aligned with the calibrated frame). Use it with
    :func:`warp_image` (or ``cv2.warpPerspective(..., flags=WARP_INVERSE_MAP)``).
    """
    camera, model = _check_camera(camera), _check_camera(model)
    if device_from_calib_rpy is None:
        device_from_calib_rpy = np.zeros(3)
    camera_from_calib = camera.K @ _view_from_calib(device_from_calib_rpy)  # (3, 3)
    model_from_calib = model.K @ VIEW_FROM_DEVICE  # (3, 3)
    return camera_from_calib @ np.linalg.inv(model_from_calib)


def _source_coords(M: np.ndarray, out_width_px: int, out_height_px: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-pixel coordinates (H_out, W_out) sampled by each output pixel, and the in-front mask."""
    u = np.arange(out_width_px, dtype=np.float64)  # (W_out,)
    v = np.arange(out_height_px, dtype=np.float64)[:, None]  # (H_out, 1)
    w = M[2, 0] * u + M[2, 1] * v + M[2, 2]  # (H_out, W_out)
    front = w > 1e-12
    w_safe = np.where(front, w, 1.0)
    x = (M[0, 0] * u + M[0, 1] * v + M[0, 2]) / w_safe  # (H_out, W_out)
    y = (M[1, 0] * u + M[1, 1] * v + M[1, 2]) / w_safe  # (H_out, W_out)
    return x, y, front


def _cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.floor(values + 0.5), info.min, info.max).astype(dtype)
    return values.astype(dtype)


EDGE = "edge"  # warp fill: samples outside the source take its nearest edge pixel, as modeld's warps do


def _taps(ix: np.ndarray, iy: np.ndarray, front: np.ndarray, W: int, H: int, fill):
    """(ix, iy, ok) of one tap: clamped to the image for ``fill == EDGE`` (ok only behind the camera fails),
    else ok where the tap lies inside the image."""
    if isinstance(fill, str) and fill == EDGE:
        return np.clip(ix, 0, W - 1), np.clip(iy, 0, H - 1), front
    ok = front & (ix >= 0) & (ix < W) & (iy >= 0) & (iy < H)
    return np.where(ok, ix, 0), np.where(ok, iy, 0), ok


def _fill_value(fill) -> float | np.ndarray:
    return 0.0 if isinstance(fill, str) else np.asarray(fill, dtype=np.float64)


def _sample_nearest(img: np.ndarray, x, y, front, fill) -> np.ndarray:
    H, W = img.shape[:2]
    ix = np.floor(x + 0.5).astype(np.int64)  # (H_out, W_out), round half up
    iy = np.floor(y + 0.5).astype(np.int64)
    ix, iy, ok = _taps(ix, iy, front, W, H, fill)
    out = img[iy, ix]  # (H_out, W_out, C)
    out[~ok] = _fill_value(fill)
    return out


def _sample_bilinear(img: np.ndarray, x, y, front, fill) -> np.ndarray:
    """Bilinear sampling; neighbours outside the image are clamped to its edge (``fill=EDGE``, as openpilot's
    OpenCL warp) or count as ``fill`` (cv2 BORDER_CONSTANT)."""
    H, W = img.shape[:2]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]  # (H_out, W_out, 1)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    src = img.astype(np.float64)  # (H, W, C)
    fill_value = _fill_value(fill)
    acc = 0.0
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            ix, iy, ok = _taps(x0 + dx, y0 + dy, front, W, H, fill)  # (H_out, W_out)
            tap = np.where(ok[..., None], src[iy, ix], fill_value)  # (H_out, W_out, C)
            acc = acc + wx * wy * tap
    return _cast_like(acc, img.dtype)  # behind the camera every tap is the fill value


def warp_image(
    image,
    M,
    out_width_px: int = MODEL_FRAME_WIDTH_PX,
    out_height_px: int = MODEL_FRAME_HEIGHT_PX,
    method: str = "nearest",
    fill=EDGE,
) -> np.ndarray:
    """Warp a camera image (H, W) or (H, W, C) into the model frame (H_out, W_out[, C]), keeping its dtype.

    Each output pixel ``(u, v)`` samples the camera image at ``M @ [u, v, 1]`` (pixel centres at integer
    coordinates, as ``cv2.warpPerspective`` with ``WARP_INVERSE_MAP``). ``method="nearest"`` rounds to the
    nearest pixel (half up), ``"bilinear"`` interpolates the four neighbours. Samples outside the image take its
    nearest edge pixel (``fill=EDGE``: modeld's warps clamp their source coordinates, the OpenCL one before Feb 2026
    and the tinygrad one since), or the constant ``fill``; behind the camera they are ``fill`` (0 for EDGE).
    """
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ContractError(f"image has shape {img.shape}; expected (H, W) or (H, W, C)")
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (3, 3):
        raise ContractError(f"warp matrix has shape {M.shape}; expected (3, 3) (model pixels -> camera pixels)")
    if out_width_px <= 0 or out_height_px <= 0:
        raise ContractError(f"output size {out_width_px}x{out_height_px} px; expected positive width and height")
    if method not in ("nearest", "bilinear"):
        raise ContractError(f"warp method {method!r}; expected 'nearest' or 'bilinear'")
    squeeze = img.ndim == 2
    img3 = img[..., None] if squeeze else img  # (H, W, C)
    x, y, front = _source_coords(M, out_width_px, out_height_px)
    sample = _sample_nearest if method == "nearest" else _sample_bilinear
    out = sample(img3, x, y, front, fill)  # (H_out, W_out, C)
    return out[..., 0] if squeeze else out


class BilinearWarp:
    """``warp_image(img, M, method="bilinear", fill=fill)`` for one fixed matrix and source size, with the four
    taps and weights of every output pixel computed once: a uint8 image (H, W, C) of that size warps 2-3x faster.
    Results agree with :func:`warp_image` to the rounding of float32 accumulation.
    """

    def __init__(self, M, src_width_px: int, src_height_px: int, out_width_px: int = MODEL_FRAME_WIDTH_PX,
                 out_height_px: int = MODEL_FRAME_HEIGHT_PX, fill=EDGE):
        if not (fill == EDGE or (not isinstance(fill, str) and fill == 0)):
            raise ContractError(f"BilinearWarp fill {fill!r}; expected {EDGE!r} or 0")
        x, y, front = _source_coords(np.asarray(M, dtype=np.float64), out_width_px, out_height_px)  # (H_out, W_out)
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        self.taps, self.weights = [], []
        for dy, wy in ((0, 1.0 - fy), (1, fy)):
            for dx, wx in ((0, 1.0 - fx), (1, fx)):
                ix, iy, ok = _taps(x0.astype(np.int64) + dx, y0.astype(np.int64) + dy, front, src_width_px,
                                   src_height_px, fill)
                self.taps.append((iy * src_width_px + ix).ravel())  # (H_out * W_out,) flat index
                self.weights.append(np.where(ok, wx * wy, 0.0).ravel().astype(np.float32)[:, None])
        self.out_shape, self.src_shape = (out_height_px, out_width_px), (src_height_px, src_width_px)

    def __call__(self, image) -> np.ndarray:
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[:2] != self.src_shape or img.dtype != np.uint8:
            raise ContractError(f"image has shape {img.shape} and dtype {img.dtype}; this warp expects uint8 "
                                f"({self.src_shape[0]}, {self.src_shape[1]}, C)")
        flat = img.reshape(-1, img.shape[2])  # (H * W, C)
        acc = flat[self.taps[0]] * self.weights[0]  # (H_out * W_out, C) float32
        for taps, weights in zip(self.taps[1:], self.weights[1:]):
            acc += flat[taps] * weights
        return _cast_like(acc, img.dtype).reshape(self.out_shape + (img.shape[2],))
