"""Colour conversion and the 6-channel frame packing of the vision model's ``img`` / ``big_img`` inputs.

Colour: the device delivers NV12 in BT.601 **full range** (Y, U, V all in 0..255, no head/foot room)::

    Y = 0.299 R + 0.587 G + 0.114 B
    U = 128 - 0.168736 R - 0.331264 G + 0.5 B
    V = 128 + 0.5 R - 0.418688 G - 0.081312 B

Chroma is subsampled 2x2 by averaging (done on RGB, which is the same because the map is linear);
results are rounded half up and clipped to uint8.

NV12 format used here: **one uint8 buffer of shape (..., H * 3 // 2, W)** — the Y plane (H rows) followed by
H/2 rows of interleaved ``U, V, U, V, ...`` — i.e. the device's layout without row-stride padding.
:func:`nv12_planes` splits it into planar Y (H, W), U (H/2, W/2), V (H/2, W/2).

The 6-channel frame (..., 6, H/2, W/2) of one 512x256 model frame is, in this exact order::

    0: Y[0::2, 0::2]   1: Y[1::2, 0::2]   2: Y[0::2, 1::2]   3: Y[1::2, 1::2]   4: U   5: V

and the vision model sees two of them stacked (:func:`stack_frame_pair`): channels 0:6 = frame t-4
(the older, 0.2 s earlier at 20 Hz), channels 6:12 = frame t (the current one).

Every function accepts leading batch dimensions, e.g. (T, 256, 512, 3) -> (T, 6, 128, 256).
"""

from __future__ import annotations

import numpy as np

from ..errors import ContractError
from .constants import FRAME_PAIR_OFFSET  # noqa: F401  (frames between the stacked pair)

__all__ = [
    "FRAME_CHANNELS",
    "MODEL_INPUT_CHANNELS",
    "FRAME_PAIR_OFFSET",
    "rgb_to_yuv420",
    "yuv420_to_rgb",
    "rgb_to_nv12",
    "nv12_to_rgb",
    "nv12_planes",
    "planes_to_nv12",
    "pack_6ch",
    "unpack_6ch",
    "rgb_to_6ch",
    "six_channel_to_y",
    "six_channel_to_rgb",
    "stack_frame_pair",
]

FRAME_CHANNELS = 6  # channels of one packed frame
MODEL_INPUT_CHANNELS = 12  # two packed frames (t-4, t) per vision input
Y_CHANNELS = (0, 1, 2, 3)  # of one packed frame: the four Y sub-grids, then U and V
UV_CHANNELS = (4, 5)

# Y sub-grid order of channels 0..3: (row offset, column offset)
_Y_SUBGRIDS = ((0, 0), (1, 0), (0, 1), (1, 1))

_Y_COEF = (0.299, 0.587, 0.114)
_U_COEF = (-0.168736, -0.331264, 0.5)
_V_COEF = (0.5, -0.418688, -0.081312)


def _check_uint8(name: str, arr) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise ContractError(f"{name} has dtype {a.dtype}; expected uint8")
    return a


def _check_rgb(rgb) -> np.ndarray:
    a = _check_uint8("rgb", rgb)
    if a.ndim < 3 or a.shape[-1] != 3:
        raise ContractError(f"rgb has shape {a.shape}; expected (..., H, W, 3)")
    H, W = a.shape[-3:-1]
    if H % 2 or W % 2 or H == 0 or W == 0:
        raise ContractError(f"rgb is {H}x{W} (HxW); expected an even, non-zero height and width for 2x2 chroma")
    return a


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Round half up and clip float values to uint8 (modifies ``x``)."""
    x += 0.5
    np.clip(x, 0.0, 255.0, out=x)
    return x.astype(np.uint8)


# Y from one RGB pixel: (3,)
_Y_FROM_RGB = np.array(_Y_COEF, dtype=np.float32)
# (U - 128, V - 128) from the 2x2 block's two horizontal neighbours, each summed over the block's two rows:
# (6, 2) = rows (R, G, B of the left column, R, G, B of the right column), each weighted 1/4 for the mean
_UV_FROM_RGB_PAIR = np.tile(np.array([_U_COEF, _V_COEF], dtype=np.float64).T / 4.0, (2, 1)).astype(np.float32)


# pixels converted per block: keeps the float32 temporaries small (cache-resident, no fresh pages per call)
_BLOCK_PX = 32768


def _rgb_to_y_uv(rgb) -> tuple[np.ndarray, np.ndarray]:
    """Y (..., H, W) and interleaved chroma UV (..., H/2, W/2, 2) uint8 from RGB (..., H, W, 3) uint8.

    Works on blocks of whole row pairs of the stacked frames (H is even, so no 2x2 block straddles two
    frames or two blocks); values are rounded half up by adding 0.5 and truncating after the clip.
    """
    rgb = _check_rgb(rgb)
    lead, (H, W) = rgb.shape[:-3], rgb.shape[-3:-1]
    flat = rgb.reshape(-1, W, 3)  # (N * H, W, 3): all rows of all frames
    n_rows = flat.shape[0]
    y_out = np.empty((n_rows, W), dtype=np.uint8)  # (N * H, W)
    uv_out = np.empty((n_rows // 2, W // 2, 2), dtype=np.uint8)  # (N * H/2, W/2, 2)
    step = max(2, (_BLOCK_PX // W) // 2 * 2)  # rows per block, even
    for r0 in range(0, n_rows, step):
        f = flat[r0 : r0 + step].astype(np.float32)  # (b, W, 3)
        y = f @ _Y_FROM_RGB  # (b, W)
        y += np.float32(0.5)
        np.clip(y, 0.0, 255.0, out=y)
        y_out[r0 : r0 + step] = y  # truncation = floor, as y >= 0
        pairs = (f[0::2] + f[1::2]).reshape(-1, 6)  # (b/2 * W/2, 6): each block's row sums, left | right column
        uv = pairs @ _UV_FROM_RGB_PAIR  # (b/2 * W/2, 2) = (U, V) - 128
        uv += np.float32(128.5)
        np.clip(uv, 0.0, 255.0, out=uv)
        uv_out[r0 // 2 : (r0 + step) // 2] = uv.reshape(-1, W // 2, 2)
    return y_out.reshape(lead + (H, W)), uv_out.reshape(lead + (H // 2, W // 2, 2))


def rgb_to_yuv420(rgb) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Planar BT.601 full-range YUV 4:2:0 from RGB (..., H, W, 3) uint8.

    Returns ``(Y (..., H, W), U (..., H/2, W/2), V (..., H/2, W/2))``, all uint8 (U and V are views into one
    interleaved array).
    """
    y, uv = _rgb_to_y_uv(rgb)
    return y, uv[..., 0], uv[..., 1]


def yuv420_to_rgb(y, u, v) -> np.ndarray:
    """RGB (..., H, W, 3) uint8 from planar full-range YUV 4:2:0 (chroma upsampled by repetition)."""
    y, u, v = _check_planes(y, u, v)
    yf = y.astype(np.float32)  # (..., H, W)
    uf = np.repeat(np.repeat(u.astype(np.float32) - 128.0, 2, axis=-2), 2, axis=-1)  # (..., H, W)
    vf = np.repeat(np.repeat(v.astype(np.float32) - 128.0, 2, axis=-2), 2, axis=-1)  # (..., H, W)
    r = yf + np.float32(1.402) * vf
    g = yf - np.float32(0.344136) * uf - np.float32(0.714136) * vf
    b = yf + np.float32(1.772) * uf
    return _to_uint8(np.stack([r, g, b], axis=-1))  # (..., H, W, 3)


def _check_planes(y, u, v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y, u, v = _check_uint8("y", y), _check_uint8("u", u), _check_uint8("v", v)
    if y.ndim < 2 or y.shape[-2] % 2 or y.shape[-1] % 2:
        raise ContractError(f"y has shape {y.shape}; expected (..., H, W) with even H and W")
    want = y.shape[:-2] + (y.shape[-2] // 2, y.shape[-1] // 2)
    for name, plane in (("u", u), ("v", v)):
        if plane.shape != want:
            raise ContractError(f"{name} has shape {plane.shape}; expected {want} (half of y {y.shape} per axis)")
    return y, u, v


def planes_to_nv12(y, u, v) -> np.ndarray:
    """NV12 buffer (..., H * 3 // 2, W) uint8 from planar Y (..., H, W), U and V (..., H/2, W/2)."""
    y, u, v = _check_planes(y, u, v)
    H, W = y.shape[-2:]
    out = np.empty(y.shape[:-2] + (H * 3 // 2, W), dtype=np.uint8)
    out[..., :H, :] = y
    out[..., H:, 0::2] = u
    out[..., H:, 1::2] = v
    return out


def nv12_planes(nv12) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split an NV12 buffer (..., H * 3 // 2, W) into views Y (..., H, W), U and V (..., H/2, W/2)."""
    buf = _check_uint8("nv12", nv12)
    if buf.ndim < 2 or buf.shape[-2] % 3 or buf.shape[-1] % 2:
        raise ContractError(f"nv12 has shape {buf.shape}; expected (..., H * 3 // 2, W) with even H and W")
    H = buf.shape[-2] * 2 // 3
    if H % 2:
        raise ContractError(f"nv12 has shape {buf.shape}: image height {H} is odd; expected even")
    uv = buf[..., H:, :]  # (..., H/2, W) interleaved
    return buf[..., :H, :], uv[..., 0::2], uv[..., 1::2]


def rgb_to_nv12(rgb) -> np.ndarray:
    """NV12 buffer (..., H * 3 // 2, W) uint8 from RGB (..., H, W, 3) uint8 (BT.601 full range)."""
    y, uv = _rgb_to_y_uv(rgb)
    H, W = y.shape[-2:]
    return np.concatenate([y, uv.reshape(uv.shape[:-3] + (H // 2, W))], axis=-2)  # (..., H * 3 // 2, W)


def nv12_to_rgb(nv12) -> np.ndarray:
    """RGB (..., H, W, 3) uint8 from an NV12 buffer (..., H * 3 // 2, W), for visualisation."""
    return yuv420_to_rgb(*nv12_planes(nv12))


def pack_6ch(y, u, v) -> np.ndarray:
    """Pack planar Y (..., H, W), U, V (..., H/2, W/2) into the 6-channel frame (..., 6, H/2, W/2) uint8.

    Channels: ``Y[0::2, 0::2], Y[1::2, 0::2], Y[0::2, 1::2], Y[1::2, 1::2], U, V``. For the model frame
    H, W = 256, 512.
    """
    y, u, v = _check_planes(y, u, v)
    out = np.empty(u.shape[:-2] + (FRAME_CHANNELS,) + u.shape[-2:], dtype=np.uint8)  # (..., 6, H/2, W/2)
    for ch, (dr, dc) in enumerate(_Y_SUBGRIDS):
        out[..., ch, :, :] = y[..., dr::2, dc::2]
    out[..., 4, :, :] = u
    out[..., 5, :, :] = v
    return out


def _check_6ch(name: str, frame, channels: int = FRAME_CHANNELS) -> np.ndarray:
    f = _check_uint8(name, frame)
    if f.ndim < 3 or f.shape[-3] != channels:
        raise ContractError(f"{name} has shape {f.shape}; expected (..., {channels}, H/2, W/2)")
    return f


def unpack_6ch(frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`pack_6ch`: (..., 6, h, w) -> Y (..., 2h, 2w), U (..., h, w), V (..., h, w)."""
    frame = _check_6ch("frame", frame)
    h, w = frame.shape[-2:]
    y = np.empty(frame.shape[:-3] + (2 * h, 2 * w), dtype=np.uint8)  # (..., 2h, 2w)
    for ch, (dr, dc) in enumerate(_Y_SUBGRIDS):
        y[..., dr::2, dc::2] = frame[..., ch, :, :]
    return y, frame[..., 4, :, :].copy(), frame[..., 5, :, :].copy()


def rgb_to_6ch(rgb) -> np.ndarray:
    """RGB (..., H, W, 3) uint8 -> 6-channel frame (..., 6, H/2, W/2) uint8; (256, 512, 3) -> (6, 128, 256).

    Equal to ``pack_6ch(*rgb_to_yuv420(rgb))``, i.e. RGB -> NV12 planes -> packed channels.
    """
    return pack_6ch(*rgb_to_yuv420(rgb))


def six_channel_to_y(frame) -> np.ndarray:
    """Full-resolution luma (..., 2h, 2w) uint8 of a 6-channel frame (..., 6, h, w)."""
    return unpack_6ch(frame)[0]


def six_channel_to_rgb(frame) -> np.ndarray:
    """RGB (..., 2h, 2w, 3) uint8 of a 6-channel frame (..., 6, h, w), for visualisation."""
    return yuv420_to_rgb(*unpack_6ch(frame))


def stack_frame_pair(prev_6ch, cur_6ch) -> np.ndarray:
    """Vision-model input (..., 12, h, w) from two 6-channel frames, in modeld's order.

    Channels 0:6 = ``prev_6ch`` (frame t - FRAME_PAIR_OFFSET, the older one), 6:12 = ``cur_6ch`` (frame t).
    """
    prev = _check_6ch("prev_6ch", prev_6ch)
    cur = _check_6ch("cur_6ch", cur_6ch)
    if prev.shape != cur.shape:
        raise ContractError(f"prev_6ch has shape {prev.shape} but cur_6ch has {cur.shape}; expected equal shapes")
    return np.concatenate([prev, cur], axis=-3)
