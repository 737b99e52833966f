"""The built-in simulator's camera renderer: the two model-frame images openpilot's vision model sees.

Frames (see ``world.py`` and ``contract/camera.py``): the world is NED-like (x north, y east, z down); the ego
pose ``(x, y, z, roll, pitch, yaw)`` places the **device** frame (FRD, origin at the camera) in the world with
``R = Rz Ry Rx``. A model frame (``MEDMODEL`` for ``img``, ``SBIGMODEL`` for ``big_img``) is a virtual pinhole
camera aligned with the **calibrated** frame, ``p_device = rot_from_euler(device_from_calib_rpy) @ p_calib``;
the device sits in the car with a mount rotation (``mount_rpy``, recorded per episode), which the calibration
``device_from_calib_rpy`` estimates up to a small error; with both zero the calibrated frame is the car's. A
physical camera (``C3_ROAD``, ``C3_WIDE``) is aligned with the device frame. Every camera here is a
**pinhole**: the real wide camera has a fisheye lens; we render it as a pinhole with the same focal length (as
openpilot's MetaDrive bridge does).

Two routes give the same model frames:

* DIRECT (:meth:`Renderer.render`, the fast default): one ray per model-frame pixel. Pixels the device camera
  does not cover (where ``warp_image`` would sample outside its image) repeat the camera's edge pixels, as
  modeld's clamped warp does (:func:`_edge_fill`, to the nearest model pixel). The two model
  frames share the camera centre and orientation, and ``SBIGMODEL``'s focal length is half ``MEDMODEL``'s, so
  the middle of the bottom half of ``big_img`` sees exactly the rays of every second pixel of ``img``: that
  region is copied from ``img`` (before noise) instead of being traced again (:func:`nested_region`).
* CAMERA (:meth:`Renderer.render_via_camera`): render the full device image with :meth:`Renderer.render_camera`
  and warp it with ``contract.camera.warp_image(..., warp_matrix(rpy, camera, model), method="nearest")``.

A frame, for rays ``w = A @ [u, v, 1]`` from the camera at ``c`` (``A``: world-from-pixel matrix):

1. Ground (:mod:`.ground_search`): on a coarse grid of pixels (``search_stride_px``, both cameras at once) Newton
   steps find where each ray meets the piecewise-planar height field of :class:`~.raster.GroundRaster`. For
   planar ground ``1 / lambda`` is linear in pixel coordinates, so it is interpolated to every pixel; ``<= 0``
   means sky. The ground point ``c + lambda w`` indexes the material raster (edges resolved per pixel) through a
   packed colour per texel.
2. Sky: a gradient from a hazy horizon to ``Lighting.sky_rgb`` by elevation (:func:`~.shading.sky_colours`).
3. Vehicles (:mod:`.boxes`): contact shadows, then a slab ray/box test inside each box's projected rectangle
   against an inverse-depth buffer (nearer boxes hide farther ones and the ground behind them).
4. Light and sensor noise: :mod:`.shading`. Determinism: same inputs and Generator state -> bit-identical
   images; ``noise_std == 0`` or ``rng=None`` -> no noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ....contract import camera as cam
from ....errors import SimulatorError
from ..world import Lighting, VehicleBox, World
from .boxes import Vehicles, draw_vehicles, prepare_vehicles, rear_light_centres_ned
from .ground_search import search_ground
from .raster import TEXEL_M, GroundRaster
from .shading import EDGE_FLAG, finish, noise_bank, palette, sky_colours, texel_colours

__all__ = ["Renderer", "rear_light_centres_ned", "nested_region", "SEARCH_STRIDE_PX"]

SEARCH_STRIDE_PX = (32, 2)  # (columns, rows) between the coarse rays of the ground search
MIN_INV_DEPTH = 1e-5  # 1 / (largest ray parameter) used for ground pixels


def _interpolation(n_nodes: int, stride: int, n_out: int) -> np.ndarray:
    """(n_nodes, n_out) float32 matrix of linear interpolation from nodes every ``stride`` samples."""
    j = np.arange(n_out)
    node, frac = j // stride, (j % stride) / stride
    M = np.zeros((n_nodes, n_out), dtype=np.float32)
    M[node, j] = 1.0 - frac
    M[np.minimum(node + 1, n_nodes - 1), j] += frac
    return M


def _edge_fill(model: cam.CameraModel, device: cam.CameraModel, rpy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(outside, source) flat indices: the model-frame pixels ``warp_image`` (nearest) would sample from outside
    ``device``, and for each the model pixel showing the device pixel modeld's clamped warp repeats there (the
    nearest model pixel to the clamped sample, found through the inverse warp)."""
    M = cam.warp_matrix(rpy, device, model)
    H, W = model.height_px, model.width_px
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    xyw = M @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])  # (3, H * W)
    x, y = np.floor(xyw[0] / xyw[2] + 0.5), np.floor(xyw[1] / xyw[2] + 0.5)
    ok = (x >= 0) & (x < device.width_px) & (y >= 0) & (y < device.height_px)
    outside = np.flatnonzero(~ok)
    clamped = np.stack([np.clip(x[outside], 0, device.width_px - 1), np.clip(y[outside], 0, device.height_px - 1),
                        np.ones(outside.size)])
    back = np.linalg.inv(M) @ clamped  # (3, n) model pixels of the clamped samples
    bu = np.clip(np.floor(back[0] / back[2] + 0.5), 0, W - 1).astype(np.intp)
    bv = np.clip(np.floor(back[1] / back[2] + 0.5), 0, H - 1).astype(np.intp)
    source = bv * W + bu
    for _ in range(2):  # a source that is itself outside (frame corners): follow it once more
        lookup = np.full(H * W, -1, dtype=np.intp)
        lookup[outside] = source
        chained = lookup[source]
        source = np.where(chained >= 0, chained, source)
    return outside, source


def nested_region(fine: cam.CameraModel, coarse: cam.CameraModel) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (r0, r1, c0, c1) of ``coarse`` whose pixels see exactly the rays of ``fine``'s pixels
    ``[::k, ::k]`` (same centre and orientation, ``fine.focal = k * coarse.focal``, integer k >= 2); None if
    there is none."""
    k = round(fine.focal_px / coarse.focal_px)
    if k < 2 or abs(fine.focal_px - k * coarse.focal_px) > 1e-9 * fine.focal_px:
        return None
    if fine.width_px % k or fine.height_px % k:
        return None
    c0, r0 = coarse.cx_px - fine.cx_px / k, coarse.cy_px - fine.cy_px / k
    if abs(c0 - round(c0)) > 1e-6 or abs(r0 - round(r0)) > 1e-6:
        return None
    r0, c0 = round(r0), round(c0)
    r1, c1 = r0 + fine.height_px // k, c0 + fine.width_px // k
    if r0 < 0 or c0 < 0 or r1 > coarse.height_px or c1 > coarse.width_px:
        return None
    return r0, r1, c0, c1


def _regions(shape: tuple[int, int], skip) -> list[tuple[int, int, int, int]]:
    """Rectangles (r0, r1, c0, c1) that tile an image of ``shape`` except the rectangle ``skip`` (or None)."""
    H, W = shape
    if skip is None:
        return [(0, H, 0, W)]
    r0, r1, c0, c1 = skip
    pieces = [(0, r0, 0, W), (r0, r1, 0, c0), (r0, r1, c1, W), (r1, H, 0, W)]
    return [p for p in pieces if p[1] > p[0] and p[3] > p[2]]


def _check_pose(ego_pose_ned) -> np.ndarray:
    pose = np.asarray(ego_pose_ned, dtype=np.float64)
    if pose.shape != (6,) or not np.all(np.isfinite(pose)):
        raise SimulatorError(
            f"ego_pose_ned has shape {pose.shape} (all finite: {bool(np.all(np.isfinite(pose)))}); "
            "expected 6 finite numbers (x, y, z, roll, pitch, yaw) of the device in the world, metres and radians"
        )
    return pose


@dataclass(frozen=True)
class _CameraRays:
    """Per-camera constants: pixel -> device ray matrix and the coarse search grid."""

    camera: cam.CameraModel
    device_from_pixel: np.ndarray  # (3, 3): device ray (x component = 1) of a homogeneous pixel
    u_nodes: np.ndarray  # (Wn,) coarse columns (the last may lie past the image)
    v_nodes: np.ndarray  # (Hn,) coarse rows
    rows_from_nodes: np.ndarray  # (H, Hn) interpolation matrix
    nodes_to_columns: np.ndarray  # (Wn, W) interpolation matrix
    stride_rows: int  # pixel rows between node rows

    def upsample(self, coarse: np.ndarray, out: np.ndarray, skip=None) -> int:
        """Bilinear interpolation of ``coarse`` (Hn, Wn) into ``out`` (H, W) float32 (rows first: fewer flops),
        except the rectangle ``skip``. Returns the number of top rows whose nodes are all <= 0: sky, set to 0."""
        positive = np.flatnonzero((coarse > 0).any(axis=1))
        sky = out.shape[0] if not positive.size else max(0, (int(positive[0]) - 1) * self.stride_rows)
        out[:sky] = 0.0
        rows = self.rows_from_nodes[sky:] @ coarse  # (H - sky, Wn)
        for r0, r1, c0, c1 in _regions(out.shape, skip):
            r0 = max(r0, sky)
            if r1 > r0:
                np.matmul(rows[r0 - sky : r1 - sky], self.nodes_to_columns[:, c0:c1], out=out[r0:r1, c0:c1])
        return sky


@dataclass(frozen=True)
class _Frame:
    """One camera's view of one frame: rays ``c + lambda (A @ [u, v, 1])`` in local world coordinates."""

    rays: _CameraRays
    A: np.ndarray  # (3, 3)
    c: np.ndarray  # (3,) camera: local x, y and world z
    forward_xy: np.ndarray  # (2,) unit horizontal heading of the device x axis

    def node_rays(self) -> np.ndarray:
        """World rays (3, Hn * Wn) of the coarse search grid."""
        A, u, v = self.A, self.rays.u_nodes, self.rays.v_nodes
        return (A[:, 0, None, None] * u + A[:, 1, None, None] * v[:, None] + A[:, 2, None, None]).reshape(3, -1)


class Renderer:
    """Renders the model frames (or any pinhole camera's image) of one :class:`World` under one :class:`Lighting`.

    ``road_camera`` / ``wide_camera``: the device cameras behind ``img`` / ``big_img`` (the DIRECT route uses them
    only to fill what they do not cover as modeld's warp does). ``device_from_calib_rpy``: roll, pitch, yaw of the
    device relative to the calibrated frame (default zeros), applied as the warp applies it.
    ``wide_from_device_rpy``: the wide camera's rotation against the road camera (``big_img`` shows it, as
    modeld's warp does not remove it). ``mount_rpy``: the device's true rotation against the pose's frame (the
    car's, where labels live; default: the calibration, i.e. a perfect calibration): the model frames then show the
    car's view turned by the calibration error, as on a device. ``search_stride_px``: (columns, rows) between the
    coarse rays of the ground search. ``raster``: a prebuilt :class:`GroundRaster` of ``world``.
    """

    def __init__(
        self,
        world: World,
        lighting: Lighting,
        road_camera: cam.CameraModel = cam.C3_ROAD,
        wide_camera: cam.CameraModel = cam.C3_WIDE,
        device_from_calib_rpy=None,
        search_stride_px: tuple[int, int] = SEARCH_STRIDE_PX,
        raster: GroundRaster | None = None,
        wide_from_device_rpy=None,
        mount_rpy=None,
    ) -> None:
        rpy = np.zeros(3) if device_from_calib_rpy is None else np.asarray(device_from_calib_rpy, dtype=np.float64)
        if rpy.shape != (3,) or len(search_stride_px) != 2 or min(search_stride_px) < 1:
            raise SimulatorError(
                f"device_from_calib_rpy has shape {rpy.shape}, search_stride_px is {search_stride_px}; "
                "expected (roll, pitch, yaw) in rad and two strides >= 1 px"
            )
        self.world, self.lighting, self.device_from_calib_rpy = world, lighting, rpy
        self.road_camera, self.wide_camera = road_camera, wide_camera
        self.raster = raster if raster is not None else GroundRaster(world)
        self.search_stride_px = (int(search_stride_px[0]), int(search_stride_px[1]))
        self._palette = palette(lighting)  # (176,) packed
        self._texels = texel_colours(self.raster, self._palette)  # packed colour per material texel
        self._noise = noise_bank(lighting.noise_std) if lighting.noise_std > 0 else None
        self._rays: dict[tuple[cam.CameraModel, bool], _CameraRays] = {}
        self._scratch: dict[int, np.ndarray] = {}  # region width -> (3, rows, width) float32 work buffers
        self._nodes: dict[tuple, np.ndarray] = {}  # (camera, rays, skipped rectangle) -> search nodes used
        self._buffers: dict[tuple, tuple] = {}  # (C, H, W) -> packed images, inverse depth, int32 scratch
        self._edges = {
            cam.MEDMODEL: _edge_fill(cam.MEDMODEL, road_camera, rpy),
            cam.SBIGMODEL: _edge_fill(cam.SBIGMODEL, wide_camera, rpy),
        }
        wide = np.zeros(3) if wide_from_device_rpy is None else np.asarray(wide_from_device_rpy, dtype=np.float64)
        self._wide_from_device = cam.rot_from_euler(wide)  # the wide camera is rotated against the road camera
        mount = rpy if mount_rpy is None else np.asarray(mount_rpy, dtype=np.float64)
        # rays of the model frames reach the pose's frame (the car's: labels) through the true mount
        self._pose_from_device = cam.rot_from_euler(mount).T
        self._nested = nested_region(cam.MEDMODEL, cam.SBIGMODEL) if not wide.any() else None

    def render(
        self, ego_pose_ned, vehicles: Sequence[VehicleBox], rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """DIRECT route: ``(img, big_img)``, each (256, 512, 3) uint8 RGB in the MEDMODEL / SBIGMODEL frames."""
        pose = _check_pose(ego_pose_ned)
        frames = self._frames([self._camera_rays(m, True) for m in (cam.MEDMODEL, cam.SBIGMODEL)], pose)
        packed = self._draw(frames, self._prepare_vehicles(pose, vehicles), [None, self._nested])
        if self._nested is not None:  # big_img's middle sees every second pixel of img (before the noise)
            r0, r1, c0, c1 = self._nested
            step = cam.MEDMODEL.height_px // (r1 - r0)
            packed[1, r0:r1, c0:c1] = packed[0, ::step, ::step]
        noise, std = self._noise, self.lighting.noise_std
        return (finish(packed[0], rng, noise, std, self._edges[cam.MEDMODEL]),
                finish(packed[1], rng, noise, std, self._edges[cam.SBIGMODEL]))

    def render_camera(
        self,
        camera: cam.CameraModel,
        ego_pose_ned,
        vehicles: Sequence[VehicleBox],
        rng: np.random.Generator | None,
        calibrated: bool = False,
    ) -> np.ndarray:
        """Image (H, W, 3) uint8 RGB of any pinhole ``camera`` at the device origin.

        ``calibrated=False``: the camera is aligned with the device frame (a physical camera such as C3_ROAD);
        ``True``: with the calibrated frame, like a model frame (nothing is blacked out).
        """
        pose = _check_pose(ego_pose_ned)
        frames = self._frames([self._camera_rays(camera, calibrated)], pose)
        packed = self._draw(frames, self._prepare_vehicles(pose, vehicles), [None])[0]
        return finish(packed, rng, self._noise, self.lighting.noise_std, None)

    def render_via_camera(
        self, ego_pose_ned, vehicles: Sequence[VehicleBox], rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """CAMERA route: render the full road / wide camera images, warp them (nearest) into the model frames."""
        out = []
        for device, model in ((self.road_camera, cam.MEDMODEL), (self.wide_camera, cam.SBIGMODEL)):
            full = self.render_camera(device, ego_pose_ned, vehicles, rng)
            M = cam.warp_matrix(self.device_from_calib_rpy, device, model)
            out.append(cam.warp_image(full, M, model.width_px, model.height_px, method="nearest"))
        return out[0], out[1]

    # ---------------------------------------------------------------------------------------- pipeline
    def _camera_rays(self, camera: cam.CameraModel, calibrated: bool) -> _CameraRays:
        key = (camera, calibrated)
        if key not in self._rays:
            device_from_pixel = cam.VIEW_FROM_DEVICE.T @ np.linalg.inv(camera.K)
            if calibrated:
                device_from_pixel = cam.rot_from_euler(self.device_from_calib_rpy) @ device_from_pixel
                if camera == cam.SBIGMODEL:  # big_img is warped from the wide camera, which sits rotated
                    device_from_pixel = self._wide_from_device @ device_from_pixel
            device_from_pixel = self._pose_from_device @ device_from_pixel  # the device sits in the car by its mount
            (sc, sr), (W, H) = self.search_stride_px, camera.size_px
            wn, hn = -(-W // sc) + 1, -(-H // sr) + 1  # nodes up to (or past) the last pixel
            u_nodes, v_nodes = np.arange(wn, dtype=np.float64) * sc, np.arange(hn, dtype=np.float64) * sr
            rows = np.ascontiguousarray(_interpolation(hn, sr, H).T)
            columns = _interpolation(wn, sc, W)
            self._rays[key] = _CameraRays(camera, device_from_pixel, u_nodes, v_nodes, rows, columns, sr)
        return self._rays[key]

    def _frames(self, rays: list[_CameraRays], pose: np.ndarray) -> list[_Frame]:
        R = cam.rot_from_euler(pose[3:6])  # (3, 3) world from device
        c = np.array([pose[0] - self.raster.origin_xy[0], pose[1] - self.raster.origin_xy[1], pose[2]])
        forward = R[:2, 0] / max(float(np.hypot(R[0, 0], R[1, 0])), 1e-9)
        return [_Frame(r, R @ r.device_from_pixel, c, forward) for r in rays]

    def _prepare_vehicles(self, pose: np.ndarray, vehicles: Sequence[VehicleBox]) -> Vehicles | None:
        if not len(vehicles):
            return None
        c = np.array([pose[0] - self.raster.origin_xy[0], pose[1] - self.raster.origin_xy[1], pose[2]])
        return prepare_vehicles(vehicles, c, self.lighting, self.raster.origin_xy)

    def _coarse_inverse_depth(self, frames: list[_Frame], skips: list) -> list[np.ndarray]:
        """Inverse depth (Hn, Wn) float32 of the ground at the search nodes of each frame (one search for all); 0 at
        nodes only pixels in the frame's skipped rectangle use."""
        nodes = [self._nodes_used(f.rays, skip) for f, skip in zip(frames, skips)]
        rays = [f.node_rays()[:, used] for f, used in zip(frames, nodes)]
        inv = search_ground(self.raster, np.concatenate(rays, axis=1), frames[0].c)
        out = []
        for x, f, used in zip(np.split(inv, np.cumsum([r.shape[1] for r in rays])[:-1]), frames, nodes):
            coarse = np.zeros(f.rays.v_nodes.size * f.rays.u_nodes.size, np.float32)
            coarse[used] = x
            out.append(coarse.reshape(f.rays.v_nodes.size, f.rays.u_nodes.size))
        return out

    def _nodes_used(self, rays: _CameraRays, skip) -> np.ndarray | slice:
        """Flat indices of the search nodes that pixels outside the rectangle ``skip`` interpolate from."""
        if skip is None:
            return slice(None)
        key = (rays.camera, rays.device_from_pixel.tobytes(), skip)
        if key not in self._nodes:
            (sc, sr), (W, H) = self.search_stride_px, rays.camera.size_px
            used = np.zeros((rays.v_nodes.size, rays.u_nodes.size), bool)
            for r0, r1, c0, c1 in _regions((H, W), skip):
                used[r0 // sr : (r1 - 1) // sr + 2, c0 // sc : (c1 - 1) // sc + 2] = True
            self._nodes[key] = np.flatnonzero(used)
        return self._nodes[key]

    def _draw(self, frames: list[_Frame], boxes: Vehicles | None, skips: list) -> np.ndarray:
        """Noise-free packed images (C, H, W) '<u4' of C cameras of one size (a reused buffer); ``skips[c]``: a
        pixel rectangle of camera c left unset, or None."""
        coarse = self._coarse_inverse_depth(frames, skips)
        shape = (len(frames), *frames[0].rays.camera.size_px[::-1])
        if shape not in self._buffers:  # reused: fresh ones cost page faults
            self._buffers[shape] = np.empty(shape, np.uint32), np.empty(shape, np.float32), np.empty(shape, np.int32)
        packed, inv, stamp = self._buffers[shape]
        for k, frame in enumerate(frames):
            sky = frame.rays.upsample(coarse[k], inv[k], skips[k])  # (H, W) also the depth buffer of the vehicles
            for region in _regions(shape[1:], skips[k]):
                self._shade(frame, inv[k], region, packed[k], sky)
        if boxes is not None:
            draw_vehicles(packed, inv, [f.A for f in frames], boxes, skips, stamp.reshape(-1))
        return packed

    def _shade(self, frame: _Frame, inv: np.ndarray, region, packed: np.ndarray, sky_rows: int) -> None:
        """Packed ground and sky colours of the pixel rectangle ``region`` (r0, r1, c0, c1) into ``packed``; the
        image's first ``sky_rows`` rows are sky."""
        r0, r1, c0, c1 = region
        top = min(max(sky_rows - r0, 0), r1 - r0)  # rows of the region known to be sky
        ground = inv[r0 + top : r1, c0:c1] > 0  # (h - top, w)
        rows_ground = np.flatnonzero(ground.any(axis=1))
        rows_sky = np.flatnonzero(~ground.all(axis=1))
        r_g = top + (int(rows_ground[0]) if rows_ground.size else len(ground))  # rows above r_g are all sky
        r_s = top + int(rows_sky[-1]) + 1 if rows_sky.size else top  # rows from r_s on are all ground
        out = packed[r0:r1, c0:c1]
        if r_s > 0:
            v = np.arange(r0, r0 + r_s, dtype=np.float32)
            sky_colours(self._palette, frame.A, frame.forward_xy, c0, v, out[:r_s])
        if r_g < r1 - r0:
            u, v = np.arange(c0, c1, dtype=np.float32), np.arange(r0 + r_g, r1, dtype=np.float32)
            g = self._ground_colours(frame, inv[r0 + r_g : r1, c0:c1], u, v)  # (h - r_g, w)
            out[r_s:] = g[r_s - r_g :]
            np.copyto(out[r_g:r_s], g[: r_s - r_g], where=ground[r_g - top : r_s - top])

    def _ground_colours(self, frame: _Frame, inv: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Packed colours (h, w) of the ground points ``c + w / inv`` of pixels ``u`` (w,) x ``v`` (h,)."""
        h, w = inv.shape
        if self._scratch.get(w) is None or self._scratch[w].shape[1] < h:  # reused: fresh ones cost page faults
            self._scratch[w] = np.empty((3, h, w), dtype=np.float32)
        lam, x, y = self._scratch[w][:, :h]  # 3 x (h, w) contiguous
        np.maximum(inv, np.float32(MIN_INV_DEPTH), out=lam)
        np.divide(np.float32(1.0), lam, out=lam)
        for k, t in enumerate((x, y)):  # local ground point in texels: c + lambda * w
            a = (frame.A[k] / TEXEL_M).astype(np.float32)
            t[...] = a[0] * u  # then + the row term: faster than one broadcasting add
            t += (a[1] * v + a[2])[:, None]
            t *= lam
            t += np.float32(frame.c[k] / TEXEL_M)
        rows = self.raster.texel_rows(x, y)
        colours = self._texels.take(rows, mode="wrap")  # rows are in range: wrap = no bounds check, 2x faster
        edge = np.flatnonzero(colours >= EDGE_FLAG)
        if edge.size:
            rows, x, y = rows.reshape(-1)[edge], x.reshape(-1)[edge], y.reshape(-1)[edge]
            colours.reshape(-1)[edge] = self.raster.edge_ids(rows, x, y, self._palette)
        return colours
