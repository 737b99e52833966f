"""The camera buffer the 2026 runtimes warp from: NV12 with the device's stride and padding, and the warp itself.

Since openpilot 0.11 the warp runs inside the model's tinygrad pickle on the raw camera buffer. Facts (openpilot
``system/camerad/cameras/nv12_info.py`` and ``selfdrive/modeld/compile_modeld.py``, read at the commits in
docs/contract.md): rows are ``stride = align(width, 128)`` bytes; the Y plane has ``y_height = align(height, 32)``
rows, the interleaved UV plane ``uv_height = align(height / 2, 16)`` rows starting at ``stride * y_height``; the
buffer is padded (VENUS) to ``size``. The warp maps every model pixel through the 3x3 ``M_inv`` (model pixel ->
camera pixel), rounds to the nearest pixel and clamps to the image (no border fill); U and V are sampled on the
half-size grid with ``M_inv * [[1, 1, .5], [1, 1, .5], [2, 2, 1]]``. The result is packed into 6 channels like
``contract.yuv``. This module is the numpy reference the tinygrad warps of our pickles are tested against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ContractError

MODEL_WIDTH_PX, MODEL_HEIGHT_PX = 512, 256
UV_SCALE = np.array([[1.0, 1.0, 0.5], [1.0, 1.0, 0.5], [2.0, 2.0, 1.0]], np.float32)


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class NV12Layout:
    """``(width, height, stride, y_height, uv_height, size)`` of a camera buffer."""

    width: int
    height: int
    stride: int
    y_height: int
    uv_height: int
    size: int

    @property
    def copy_size(self) -> int:
        """Bytes of the Y and UV planes (what the September-2026 runtime copies per frame)."""
        return self.stride * (self.y_height + self.uv_height)

    @property
    def uv_offset(self) -> int:
        return self.stride * self.y_height


def nv12_layout(width: int, height: int) -> NV12Layout:
    stride = _align(width, 128)
    y_height = _align(height, 32)
    uv_height = _align(height // 2, 16)
    size = stride * y_height + stride * uv_height + 4096 + max(16 * 1024, 8 * stride)
    size = _align(size, 4096)
    size = _align(size + _align(width, 512) * 512, 4096)
    return NV12Layout(width, height, stride, y_height, uv_height, size)


def pack_nv12(y: np.ndarray, uv: np.ndarray, layout: NV12Layout) -> np.ndarray:
    """A flat (size,) uint8 camera buffer from Y (h, w) and interleaved UV (h/2, w) planes."""
    if y.shape != (layout.height, layout.width) or uv.shape != (layout.height // 2, layout.width):
        raise ContractError(f"NV12 planes {y.shape} / {uv.shape}, expected ({layout.height}, {layout.width}) / "
                            f"({layout.height // 2}, {layout.width}) for a {layout.width}x{layout.height} camera")
    buf = np.zeros(layout.size, np.uint8)
    ys = buf[: layout.uv_offset].reshape(layout.y_height, layout.stride)
    ys[: layout.height, : layout.width] = y
    uvs = buf[layout.uv_offset: layout.uv_offset + layout.uv_height * layout.stride].reshape(layout.uv_height,
                                                                                             layout.stride)
    uvs[: layout.height // 2, : layout.width] = uv
    return buf


def _sample(plane: np.ndarray, m_inv: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    h, w = plane.shape
    xs, ys = np.meshgrid(np.arange(out_w, dtype=np.float32), np.arange(out_h, dtype=np.float32))
    m = m_inv.astype(np.float32)
    den = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
    src_x = (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) / den
    src_y = (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) / den
    ix = np.clip(np.round(src_x), 0, w - 1).astype(np.int64)  # round half to even, as tinygrad's round
    iy = np.clip(np.round(src_y), 0, h - 1).astype(np.int64)
    return plane[iy, ix]


def warp_nv12(buffer: np.ndarray, m_inv: np.ndarray, layout: NV12Layout) -> np.ndarray:
    """(6, 128, 256) uint8: the model frame the runtime's warp makes from one camera buffer."""
    buf = np.asarray(buffer, np.uint8).reshape(-1)
    y = buf[: layout.uv_offset].reshape(layout.y_height, layout.stride)[: layout.height, : layout.width]
    uv = buf[layout.uv_offset: layout.uv_offset + layout.uv_height * layout.stride].reshape(layout.uv_height,
                                                                                           layout.stride)
    uv = uv[: layout.height // 2, : layout.width]
    m_uv = np.asarray(m_inv, np.float32) * UV_SCALE
    wy = _sample(y, m_inv, MODEL_WIDTH_PX, MODEL_HEIGHT_PX)
    wu = _sample(uv[:, 0::2], m_uv, MODEL_WIDTH_PX // 2, MODEL_HEIGHT_PX // 2)
    wv = _sample(uv[:, 1::2], m_uv, MODEL_WIDTH_PX // 2, MODEL_HEIGHT_PX // 2)
    return np.stack([wy[0::2, 0::2], wy[1::2, 0::2], wy[0::2, 1::2], wy[1::2, 1::2], wu, wv])
