"""Pictures of an episode: Y frames with lane lines, edges, plan and leads drawn on (the labels sit on the pixels).

The road frame (``img``, medmodel intrinsics) and the wide frame (``big_img``, sbigmodel) are reconstructed from
their packed YUV channels (luma only) and the labels - all in the calibrated frame - are projected with the
contract's camera models. PNGs are written with zlib (no imaging dependency).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ..contract import camera, yuv
from ..contract.constants import NUM_LANE_LINES, NUM_ROAD_EDGES, X_IDXS, LeadField, Plan, RoadTransform
from ..errors import ConfigError
from .shards import Shard, open_shard, read_frames, read_labels

LANE_RGB = [(255, 160, 0), (255, 255, 0), (255, 255, 0), (255, 160, 0)]
EDGE_RGB = (255, 40, 40)
PLAN_RGB = (40, 255, 80)
LEAD_RGB = (0, 200, 255)
LEAD_BOX_M = (1.85, 1.5)  # width, height of the drawn lead box


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 image as an 8-bit RGB PNG."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    Path(path).write_bytes(png)


def draw_polyline(img: np.ndarray, pts_px: np.ndarray, rgb, thickness: int = 1) -> None:
    """Draw connected segments through (N, 2) pixel points (NaN points break the line), in place."""
    h, w = img.shape[:2]
    for a, b in zip(pts_px[:-1], pts_px[1:]):
        if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            continue
        n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)) + 1
        if n > 4 * (w + h):
            continue  # wildly off-screen segment
        u = np.rint(np.linspace(a[0], b[0], n)).astype(int)
        v = np.rint(np.linspace(a[1], b[1], n)).astype(int)
        for du in range(-(thickness // 2), thickness // 2 + 1):
            for dv in range(-(thickness // 2), thickness // 2 + 1):
                uu, vv = u + du, v + dv
                ok = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
                img[vv[ok], uu[ok]] = rgb


def _project(points_m: np.ndarray, model: camera.CameraModel) -> np.ndarray:
    px, front = camera.project_points_device(points_m.reshape(-1, 3), model)
    px = np.where(front[:, None], px, np.nan)
    return px.reshape(points_m.shape[:-1] + (2,))


DEFAULT_PALETTE = {"lane": LANE_RGB, "edge": EDGE_RGB, "plan": PLAN_RGB, "lead": LEAD_RGB}


def draw_labels(rgb: np.ndarray, labels: dict[str, np.ndarray], t: int, model: camera.CameraModel,
                palette: dict | None = None, draw_plan: bool = True) -> np.ndarray:
    """Draw frame t's lane lines, road edges, plan path and lead box through ``model`` onto ``rgb`` in place."""
    colours = palette or DEFAULT_PALETTE
    x = X_IDXS[:, None]
    for i in range(NUM_LANE_LINES):
        pts = np.concatenate([x, labels["lane_lines"][t, i]], axis=1)
        thickness = 2 if labels["lane_lines_prob"][t, i] > 0.5 else 1
        draw_polyline(rgb, _project(pts, model), colours["lane"][i], thickness)
    for i in range(NUM_ROAD_EDGES):
        pts = np.concatenate([x, labels["road_edges"][t, i]], axis=1)
        draw_polyline(rgb, _project(pts, model), colours["edge"], 1)
    height = float(labels["road_transform"][t, RoadTransform.HEIGHT]) or camera.CAMERA_HEIGHT_M
    if draw_plan:
        path = labels["plan"][t][:, Plan.POSITION] + np.array([0.0, 0.0, height])  # the road under the path
        draw_polyline(rgb, _project(path, model), colours["plan"], 2)
    if labels["lead_prob"][t, 0] > 0.5:
        lx, ly = labels["lead"][t, 0, 0, LeadField.X], labels["lead"][t, 0, 0, LeadField.Y]
        half_w, box_h = LEAD_BOX_M[0] / 2, LEAD_BOX_M[1]
        corners = np.array([[lx, ly - half_w, height], [lx, ly + half_w, height],
                            [lx, ly + half_w, height - box_h], [lx, ly - half_w, height - box_h],
                            [lx, ly - half_w, height]])
        draw_polyline(rgb, _project(corners, model), colours["lead"], 2)
    return rgb


def overlay_labels(y_img: np.ndarray, labels: dict[str, np.ndarray], t: int, model: camera.CameraModel) -> np.ndarray:
    """(256, 512, 3) picture: luma of one frame with frame t's labels projected through ``model``."""
    return draw_labels(np.repeat(y_img[:, :, None], 3, axis=2).copy(), labels, t, model)


def frame_picture(shard: Shard, labels: dict[str, np.ndarray], t: int) -> np.ndarray:
    """(256, 1024 + gap, 3): road frame | wide frame, with labels."""
    road_y = yuv.six_channel_to_y(read_frames(shard, "img", [t])[0])
    wide_y = yuv.six_channel_to_y(read_frames(shard, "big_img", [t])[0])
    road = overlay_labels(road_y, labels, t, camera.MEDMODEL)
    wide = overlay_labels(wide_y, labels, t, camera.SBIGMODEL)
    gap = np.full((road.shape[0], 8, 3), 255, np.uint8)
    return np.concatenate([road, gap, wide], axis=1)


def parse_frames(spec: str | None, frame: int | None, n_frames: int) -> list[int]:
    """Frame indices from ``--frame N`` or ``--frames a:b:step``; ConfigError for out-of-range values."""
    if spec:
        try:
            parts = [int(p) if p else None for p in spec.split(":")]
            frames = list(range(n_frames))[slice(*parts)]
        except (ValueError, TypeError):
            raise ConfigError(f"--frames {spec!r}: expected a:b or a:b:step") from None
    else:
        frames = [0 if frame is None else frame]
    bad = [f for f in frames if not 0 <= f < n_frames]
    if not frames or bad:
        raise ConfigError(f"frames {bad or spec} are outside the shard's 0..{n_frames - 1}")
    return frames


def render_viz(shard_path: str | Path, out: str | Path, frame: int | None = None, frames: str | None = None,
               max_rows: int = 12) -> Path:
    """Write the picture of one frame, or a vertical strip of frames (at most ``max_rows``)."""
    shard = open_shard(shard_path)
    labels = read_labels(shard)
    picks = parse_frames(frames, frame, shard.n_frames)
    if len(picks) > max_rows:
        picks = picks[:: int(np.ceil(len(picks) / max_rows))]
    rows = []
    for t in picks:
        rows.append(frame_picture(shard, labels, t))
        rows.append(np.full((6, rows[-1].shape[1], 3), 255, np.uint8))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_png(out, np.concatenate(rows[:-1], axis=0))
    return out
