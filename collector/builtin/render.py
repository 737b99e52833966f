"""The built-in simulator's camera renderer: the two model-frame images openpilot's vision model sees.

Frames (see ``world.py`` and ``contract/camera.py``): the world is NED-like (x north, y east, z down); the ego
pose ``(x, y, z, roll, pitch, yaw)`` places the **device** frame (FRD, origin at the camera) in the world with
``R = Rz Ry Rx``. A model frame (``MEDMODEL`` for ``img``, ``SBIGMODEL`` for ``big_img``) is a virtual pinhole
camera aligned with the **calibrated** frame, ``p_device = rot_from_euler(device_from_calib_rpy) @ p_calib``;
our device cameras sit at the device origin with no mount rotation, so with the default rpy = 0 the
calibrated frame is the device frame. A physical camera (``C3_ROAD``, ``C3_WIDE``) is aligned with the
device frame. Every camera here is a **pinhole**: the real wide camera has a fisheye lens; we render it as a
pinhole with the same focal length (as openpilot's MetaDrive bridge does).

Two routes give the same model frames:

* DIRECT (:meth:`Renderer.render`, the fast default): one ray per model-frame pixel. Pixels the device camera
  does not cover (where ``warp_image`` would sample outside its image) are black, as on the device.
* CAMERA (:meth:`Renderer.render_via_camera`): render the full device image with :meth:`Renderer.render_camera`
  and warp it with ``contract.camera.warp_image(..., warp_matrix(rpy, camera, model), method="nearest")``.

A frame, for rays ``w = A @ [u, v, 1]`` from the camera at ``c`` (``A``: world-from-pixel matrix):

1. Ground: on a coarse grid of pixels (``search_stride_px``) Newton steps find where each ray meets the
   piecewise-planar height field of :class:`~.raster.GroundRaster` (each step intersects the plane under the
   current guess, so a constant grade is exact in one step). Far rays first march out to find a hill that
   rises above the ego's horizon. Away from roads, and for rays that do not settle (grazing a crest), the
   ground is a flat plane level with the ground under the ego. The height field is single-valued: no bridges.
   For planar ground ``1 / lambda`` is linear in pixel coordinates, so it is interpolated to every pixel;
   ``<= 0`` means sky. The ground point ``c + lambda w`` indexes the material raster (edges resolved per pixel).
2. Sky: a gradient from a hazy horizon to ``Lighting.sky_rgb`` by elevation.
3. Vehicles (:class:`~.world.VehicleBox`): contact shadows, then a slab ray/box test inside each box's projected
   rectangle against an inverse-depth buffer (nearer boxes hide farther ones and the ground behind them);
   faces shaded by the sun, a dark glass band, an underbody band and two rear lights (bright red if braking).
4. Light: surfaces show ``rgb * (ambient + (1 - ambient) max(0, n . sun)) * exposure``, the sky
   ``sky * exposure``. Sensor noise: Gaussian, ``Lighting.noise_std`` 8-bit units per pixel and channel, read
   from a fixed bank of N(0, 1) samples at an offset drawn from the given Generator (fresh normals would cost
   more than the whole render).

Colours are composed as packed little-endian RGBX uint32 (one gather per pixel, one add for the noise). For
that, noise is clipped to +-``NOISE_CLIP`` and scene colours to ``[NOISE_CLIP, 255 - NOISE_CLIP]``, so the
packed add never carries between channels. Determinism: same inputs and Generator state -> bit-identical
images; ``noise_std == 0`` or ``rng=None`` -> no noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from ...contract import camera as cam
from ...errors import SimulatorError
from .raster import N_GROUND_IDS, TEXEL_M, TEXTURE_LEVELS, GroundRaster, Material
from .world import Lighting, VehicleBox, World

SEARCH_STRIDE_PX = (32, 2)  # (columns, rows) between the coarse rays of the ground search
NEWTON_ITERATIONS = 3
CONVERGED_INV = 3e-3  # coarse rays whose inverse depth moved less than this (relative) have converged
FAR_RANGE_M = 400.0  # rays that miss the current plane look again this far away (horizontal range)
MARCH_RANGES_M = (30.0, 60.0, 120.0, 240.0, 400.0)  # far rays first look for ground at these ranges
MAX_SKY_TAN = 0.12  # rays this steeply above the ego's road plane are sky without a search (12 % grade)
MIN_INV_DEPTH = 1e-5  # 1 / (largest ray parameter) used for ground pixels
NEAR_M = 0.05  # near clipping distance of vehicle boxes (ray parameter ~ metres ahead)
SKY_LEVELS = 64
SKY_TAN_STEP = 0.004  # tan(elevation) per sky level
SKY_ID0 = N_GROUND_IDS  # palette: ground ids, then sky levels
HAZE_RGB = (235.0, 235.0, 235.0)
PAINT_RGB = {Material.WHITE_PAINT: (225.0, 225.0, 220.0), Material.YELLOW_PAINT: (215.0, 170.0, 55.0)}
TEXTURE_CONTRAST = {Material.GRASS: 0.18, Material.ASPHALT: 0.08}  # relative brightness range; paint 0.03
GLASS_RGB = (30.0, 36.0, 44.0)
UNDERBODY_RGB = (28.0, 28.0, 30.0)
BRAKE_ON_RGB = (255.0, 40.0, 30.0)  # emissive
BRAKE_OFF_RGB = (120.0, 22.0, 20.0)  # red plastic, lit like the rear face
GLASS_BAND = (0.60, 0.93)  # fractions of the box height
LIGHT_BAND = (0.46, 0.58)
LIGHT_INSET_M = (0.06, 0.38)  # lateral span of each rear light, measured inwards from the box side
PILLAR_M = 0.12
UNDERBODY_M = 0.28
SHADOW_MARGIN_M = 0.25  # the contact shadow extends this far beyond the footprint; it keeps 5/8 of the light
NOISE_CLIP = 10
NOISE_BANK_PX = 1 << 20
_NOISE_SEED = 20260501
_BOX_CORNERS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 0)], dtype=np.float64)
_BOX_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1])  # (12, 2)
_FOOT_CORNERS = np.array([[sx, sy, 0] for sx in (-1, 1) for sy in (-1, 1)], dtype=np.float64)  # (4, 3)
_FOOT_EDGES = np.array([(0, 1), (1, 3), (3, 2), (2, 0)])
_FACE_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], dtype=np.float64)


def rear_light_centres_ned(vehicle: VehicleBox) -> np.ndarray:
    """World points (2, 3) of the centres of a box's left and right rear lights (for tests and tools)."""
    y_m = vehicle.width_m / 2.0 - sum(LIGHT_INSET_M) / 2.0
    h_m = -vehicle.height_m * sum(LIGHT_BAND) / 2.0
    local = np.array([[-vehicle.length_m / 2.0, -y_m, h_m], [-vehicle.length_m / 2.0, y_m, h_m]])  # (2, 3)
    pose = np.asarray(vehicle.pose_ned, dtype=np.float64)
    return pose[:3] + local @ cam.rot_from_euler(pose[3:6]).T


def _light(lighting: Lighting, normals_ned: np.ndarray) -> np.ndarray:
    """Brightness (...,) of surfaces with world normals (..., 3), exposure included; the sun's azimuth is
    measured from north towards east, its elevation above the horizon."""
    el, az = lighting.sun_elevation_rad, lighting.sun_azimuth_rad
    sun = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), -np.sin(el)])  # towards the sun
    direct = np.maximum(normals_ned @ sun, 0.0)
    return (lighting.ambient + (1.0 - lighting.ambient) * direct) * lighting.exposure


def _pack(rgb: np.ndarray) -> np.ndarray:
    """Colours (..., 3) -> packed '<u4' RGBX minus NOISE_CLIP per channel (see the module docstring)."""
    c = np.clip(np.round(np.asarray(rgb, dtype=np.float64)), NOISE_CLIP, 255 - NOISE_CLIP).astype(np.uint32)
    c -= NOISE_CLIP
    return (c[..., 0] | (c[..., 1] << 8) | (c[..., 2] << 16)).astype("<u4")


def _palette(world: World, lighting: Lighting) -> np.ndarray:
    """Packed colours (SKY_ID0 + SKY_LEVELS,) of the ground ids and the sky levels."""
    base = {Material.GRASS: world.grass_rgb, Material.ASPHALT: lighting.asphalt_rgb, **PAINT_RGB}
    ground_light = _light(lighting, np.array([0.0, 0.0, -1.0]))
    levels = np.arange(TEXTURE_LEVELS) / (TEXTURE_LEVELS - 1) - 0.5  # (16,) -0.5 .. 0.5
    rows = []
    for m in Material:  # edge ids never reach the palette (the raster resolves them); give them a colour anyway
        colour = base.get(m, base[Material.ASPHALT])
        rows.append(np.outer(1.0 + TEXTURE_CONTRAST.get(m, 0.03) * levels, colour) * ground_light)  # (16, 3)
    tan_el = np.arange(SKY_LEVELS) * SKY_TAN_STEP  # (64,)
    haze = np.exp(-tan_el / 0.08)[:, None]  # (64, 1): 1 at the horizon
    sky = (np.asarray(lighting.sky_rgb) * (1.0 - haze) + np.asarray(HAZE_RGB) * haze) * lighting.exposure
    return _pack(np.concatenate(rows + [sky]))


@cache
def _unit_normals() -> np.ndarray:
    """A fixed (NOISE_BANK_PX, 3) float32 bank of N(0, 1) samples, made once per process (read-only)."""
    normal = np.random.default_rng(_NOISE_SEED).standard_normal((NOISE_BANK_PX, 3), dtype=np.float32)
    normal.setflags(write=False)
    return normal


def _noise_bank(noise_std: float) -> np.ndarray:
    """Packed noise (NOISE_BANK_PX,): per channel round(N(0, std)) clipped to +-NOISE_CLIP, plus NOISE_CLIP."""
    return _pack(np.clip(np.round(_unit_normals() * np.float32(noise_std)), -NOISE_CLIP, NOISE_CLIP) + 2 * NOISE_CLIP)


def _interpolation(n_nodes: int, stride: int, n_out: int) -> np.ndarray:
    """(n_nodes, n_out) float32 matrix of linear interpolation from nodes every ``stride`` samples."""
    j = np.arange(n_out)
    node, frac = j // stride, (j % stride) / stride
    M = np.zeros((n_nodes, n_out), dtype=np.float32)
    M[node, j] = 1.0 - frac
    M[np.minimum(node + 1, n_nodes - 1), j] += frac
    return M


def _outside_camera(model: cam.CameraModel, device: cam.CameraModel, rpy: np.ndarray) -> np.ndarray:
    """Flat indices of model-frame pixels that ``warp_image`` (nearest) would fill from outside ``device``."""
    M = cam.warp_matrix(rpy, device, model)
    u, v = np.meshgrid(np.arange(model.width_px, dtype=np.float64), np.arange(model.height_px, dtype=np.float64))
    xyw = M @ np.stack([u.ravel(), v.ravel(), np.ones(u.size)])  # (3, H * W)
    with np.errstate(divide="ignore", invalid="ignore"):
        x, y = np.floor(xyw[0] / xyw[2] + 0.5), np.floor(xyw[1] / xyw[2] + 0.5)
    ok = (xyw[2] > 1e-12) & (x >= 0) & (x < device.width_px) & (y >= 0) & (y < device.height_px)
    return np.flatnonzero(~ok)


def _check_pose(ego_pose_ned) -> np.ndarray:
    pose = np.asarray(ego_pose_ned, dtype=np.float64)
    if pose.shape != (6,) or not np.all(np.isfinite(pose)):
        raise SimulatorError(
            f"ego_pose_ned has shape {pose.shape} (all finite: {bool(np.all(np.isfinite(pose)))}); "
            "expected 6 finite numbers (x, y, z, roll, pitch, yaw) of the device in the world, metres and radians"
        )
    return pose


def _plane_inv_depth(planes: np.ndarray, w: np.ndarray, c: np.ndarray) -> np.ndarray:
    """1 / lambda where rays ``c + lambda w`` (w (3, N)) meet planes (N, 3) or (3,); <= 0: no hit ahead."""
    a, gx, gy = planes[..., 0], planes[..., 1], planes[..., 2]
    num = a + gx * c[0] + gy * c[1] - c[2]  # plane z under the camera minus the camera's z
    den = w[2] - gx * w[0] - gy * w[1]  # how fast the ray approaches the plane
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(den / num, -1e3, 1e3)


@dataclass(frozen=True)
class _CameraRays:
    """Per-camera constants: pixel -> device ray matrix and the coarse search grid."""

    camera: cam.CameraModel
    device_from_pixel: np.ndarray  # (3, 3): device ray (x component = 1) of a homogeneous pixel
    u_nodes: np.ndarray  # (Wn,) coarse columns (the last may lie past the image)
    v_nodes: np.ndarray  # (Hn,) coarse rows
    rows_from_nodes: np.ndarray  # (H, Hn) interpolation matrix
    nodes_to_columns: np.ndarray  # (Wn, W) interpolation matrix

    def upsample(self, coarse: np.ndarray) -> np.ndarray:
        """(Hn, Wn) -> (H, W) float32 by bilinear interpolation (rows first: fewer flops)."""
        return (self.rows_from_nodes @ coarse) @ self.nodes_to_columns


@dataclass(frozen=True)
class _Frame:
    """One camera's view of one frame: rays ``c + lambda (A @ [u, v, 1])`` in local world coordinates."""

    A: np.ndarray  # (3, 3)
    c: np.ndarray  # (3,) camera: local x, y and world z
    forward_xy: np.ndarray  # (2,) unit horizontal heading of the device x axis


@dataclass(frozen=True)
class _Vehicles:
    """One frame's vehicle boxes, camera independent. Box frame: x fwd, y right, z down, origin at the centre
    of the bottom face; ``R`` maps box to world axes."""

    R: np.ndarray  # (V, 3, 3) world from box
    o: np.ndarray  # (V, 3) camera position in each box frame
    lo: np.ndarray  # (V, 3) box minimum corner minus o (box frame)
    hi: np.ndarray  # (V, 3) box maximum corner minus o
    corners: np.ndarray  # (V, 8, 3) box corners minus the camera, world axes
    foot: np.ndarray  # (V, 4, 3) corners of the contact shadow minus the camera, world axes
    foot_planes: np.ndarray  # (V, 4, 3) normals of the planes through the camera and the shadow's edges, inward
    colours: np.ndarray  # (V, 19) packed: body per face, glass per face, underbody per face, rear light
    size_m: np.ndarray  # (V, 3) length, width, height


class Renderer:
    """Renders the model frames (or any pinhole camera's image) of one :class:`World` under one :class:`Lighting`.

    ``road_camera`` / ``wide_camera``: the device cameras behind ``img`` / ``big_img`` (the DIRECT route uses them
    only to black out what they do not cover). ``device_from_calib_rpy``: roll, pitch, yaw of the device relative
    to the calibrated frame (default zeros), applied as the warp applies it. ``search_stride_px``: (columns, rows)
    between the coarse rays of the ground search. ``raster``: a prebuilt :class:`GroundRaster` of ``world``.
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
        self._palette = _palette(world, lighting)  # (176,) packed
        self._noise = _noise_bank(lighting.noise_std) if lighting.noise_std > 0 else None
        self._rays: dict[tuple[cam.CameraModel, bool], _CameraRays] = {}
        self._scratch: dict[int, np.ndarray] = {}  # image width -> (3, rows, width) float32 work buffers
        self._outside = {
            cam.MEDMODEL: _outside_camera(cam.MEDMODEL, road_camera, rpy),
            cam.SBIGMODEL: _outside_camera(cam.SBIGMODEL, wide_camera, rpy),
        }

    def render(
        self, ego_pose_ned, vehicles: Sequence[VehicleBox], rng: np.random.Generator | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """DIRECT route: ``(img, big_img)``, each (256, 512, 3) uint8 RGB in the MEDMODEL / SBIGMODEL frames."""
        pose, out = _check_pose(ego_pose_ned), []
        boxes = self._prepare_vehicles(pose, vehicles)
        for model in (cam.MEDMODEL, cam.SBIGMODEL):
            packed = self._render(self._camera_rays(model, True), pose, boxes)
            out.append(self._finish(packed, rng, self._outside[model]))
        return out[0], out[1]

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
        packed = self._render(self._camera_rays(camera, calibrated), pose, self._prepare_vehicles(pose, vehicles))
        return self._finish(packed, rng, np.zeros(0, dtype=np.intp))

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
            (sc, sr), (W, H) = self.search_stride_px, camera.size_px
            wn, hn = -(-W // sc) + 1, -(-H // sr) + 1  # nodes up to (or past) the last pixel
            u_nodes, v_nodes = np.arange(wn, dtype=np.float64) * sc, np.arange(hn, dtype=np.float64) * sr
            rows = np.ascontiguousarray(_interpolation(hn, sr, H).T)
            self._rays[key] = _CameraRays(camera, device_from_pixel, u_nodes, v_nodes, rows, _interpolation(wn, sc, W))
        return self._rays[key]

    def _render(self, rays: _CameraRays, pose: np.ndarray, boxes: _Vehicles | None) -> np.ndarray:
        """Noise-free packed image (H, W) '<u4' of one camera."""
        R = cam.rot_from_euler(pose[3:6])  # (3, 3) world from device
        c = np.array([pose[0] - self.raster.origin_xy[0], pose[1] - self.raster.origin_xy[1], pose[2]])
        forward = R[:2, 0] / max(float(np.hypot(R[0, 0], R[1, 0])), 1e-9)
        frame = _Frame(R @ rays.device_from_pixel, c, forward)
        inv = self._inverse_depth(rays, frame)  # (H, W) float32, also the depth buffer of the vehicles
        packed = self._palette.take(self._ids(frame, inv))  # (H, W)
        if boxes is not None:
            _draw_vehicles(packed, inv, frame.A, boxes)
        return packed

    def _prepare_vehicles(self, pose: np.ndarray, vehicles: Sequence[VehicleBox]) -> _Vehicles | None:
        if not len(vehicles):
            return None
        c = np.array([pose[0] - self.raster.origin_xy[0], pose[1] - self.raster.origin_xy[1], pose[2]])
        return _prepare_vehicles(vehicles, c, self.lighting, self.raster.origin_xy)

    def _inverse_depth(self, rays: _CameraRays, frame: _Frame) -> np.ndarray:
        """1 / lambda of the ground at every pixel (H, W) float32; <= 0 where the ray sees sky."""
        A, u, v = frame.A, rays.u_nodes, rays.v_nodes
        w = A[:, 0, None, None] * u + A[:, 1, None, None] * v[:, None] + A[:, 2, None, None]  # (3, Hn, Wn)
        coarse = self._search_ground(w.reshape(3, -1), frame.c).reshape(v.size, u.size).astype(np.float32)
        return rays.upsample(coarse)

    def _search_ground(self, w: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Inverse ray parameter (N,) of the first ground hit of rays w (3, N), by Newton steps on height planes.

        Rays that do not settle within NEWTON_ITERATIONS (they graze a crest or the edge of a terrain band) fall
        on the flat plane level with the ground under the ego.
        """
        under = self.raster.planes_local(c[:1], c[1:2])[0]  # (3,) plane under the camera
        if np.isnan(under[0]):  # off the raster: flat ground one camera height below
            under = np.array([c[2] + cam.CAMERA_HEIGHT_M, 0.0, 0.0])
        flat = np.array([under[0] + under[1] * c[0] + under[2] * c[1], 0.0, 0.0])  # level with the ego's ground
        inv = _plane_inv_depth(under, w, c)  # (N,)
        horiz = np.maximum(np.hypot(w[0], w[1]), 1e-9)  # (N,)
        rise = -w[2] / horiz  # tan of the elevation
        with np.errstate(divide="ignore", invalid="ignore"):  # horizontal range within which a rising ray
            reach = np.where(rise > 0, (c[2] - min(self.raster.top_z, flat[0])) / rise, np.inf)  # can meet ground
        todo = np.flatnonzero((w[2] - under[1] * w[0] - under[2] * w[1] > -MAX_SKY_TAN * horiz) & (reach > 0))
        far = todo[inv[todo] * horiz[todo] < 1.0 / MARCH_RANGES_M[1]]  # no hit on the ego's plane within 60 m
        if far.size:
            inv[far] = self._march(w[:, far], c, horiz[far], reach[far], inv[far], flat)
        for _ in range(NEWTON_ITERATIONS):
            if not todo.size:
                return inv
            wt, inv_t = w[:, todo], inv[todo]  # (3, n), (n,)
            far_lam = FAR_RANGE_M / horiz[todo]
            with np.errstate(divide="ignore"):
                lam = np.where(inv_t * far_lam > 1.0, 1.0 / inv_t, far_lam)  # current guess; far if no hit in range
            planes = self.raster.planes_local(c[0] + lam * wt[0], c[1] + lam * wt[1])  # (n, 3)
            planes[np.isnan(planes[:, 0])] = flat
            new = _plane_inv_depth(planes, wt, c)
            inv[todo] = new
            todo = todo[np.abs(new - inv_t) > CONVERGED_INV * np.abs(new) + 1e-9]
        inv[todo] = _plane_inv_depth(flat, w[:, todo], c)
        return inv

    def _march(self, w, c, horiz: np.ndarray, reach: np.ndarray, inv: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Better first guesses (n,) for far rays: the plane at the first of MARCH_RANGES_M where the ray is
        below the ground (a hill ahead can rise above the ego's horizon); unchanged where it never is."""
        inv, open_ = inv.copy(), np.arange(inv.size)
        for range_m in MARCH_RANGES_M:
            open_ = open_[reach[open_] >= range_m]  # beyond its reach a rising ray is above all ground
            lam = range_m / horiz[open_]
            x, y = c[0] + lam * w[0, open_], c[1] + lam * w[1, open_]
            planes = self.raster.planes_local(x, y)  # (m, 3)
            planes[np.isnan(planes[:, 0])] = flat
            below = c[2] + lam * w[2, open_] >= planes[:, 0] + planes[:, 1] * x + planes[:, 2] * y  # z down
            inv[open_[below]] = _plane_inv_depth(planes[below], w[:, open_[below]], c)
            open_ = open_[~below]
        return inv

    def _ids(self, frame: _Frame, inv: np.ndarray) -> np.ndarray:
        """Palette ids (H, W) uint8: ground ids where ``inv > 0``, sky levels elsewhere."""
        H, W = inv.shape
        ground = inv > 0  # (H, W)
        rows_ground = np.flatnonzero(ground.any(axis=1))
        rows_sky = np.flatnonzero(~ground.all(axis=1))
        r_g = int(rows_ground[0]) if rows_ground.size else H  # rows above r_g are all sky
        r_s = int(rows_sky[-1]) + 1 if rows_sky.size else 0  # rows from r_s on are all ground
        ids = np.empty((H, W), dtype=np.uint8)
        u = np.arange(W, dtype=np.float32)
        if r_s > 0:
            ids[:r_s] = self._sky_ids(frame, W, np.arange(r_s, dtype=np.float32))
        if r_g < H:
            g = self._ground_ids(frame, inv[r_g:], u, np.arange(r_g, H, dtype=np.float32))  # (H - r_g, W)
            ids[r_s:] = g[r_s - r_g :]
            ids[r_g:r_s] = np.where(ground[r_g:r_s], g[: r_s - r_g], ids[r_g:r_s])
        return ids

    def _ground_ids(self, frame: _Frame, inv: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        h, W = inv.shape
        if self._scratch.get(W) is None or self._scratch[W].shape[1] < h:  # reused: fresh ones cost page faults
            self._scratch[W] = np.empty((3, h, W), dtype=np.float32)
        lam, x, y = self._scratch[W][:, :h]  # 3 x (h, W) contiguous
        np.maximum(inv, np.float32(MIN_INV_DEPTH), out=lam)
        np.divide(np.float32(1.0), lam, out=lam)
        for k, t in enumerate((x, y)):  # local ground point in texels: c + lambda * w
            a = (frame.A[k] / TEXEL_M).astype(np.float32)
            np.add((a[0] * u)[None, :], (a[1] * v + a[2])[:, None], out=t)
            t *= lam
            t += np.float32(frame.c[k] / TEXEL_M)
        return self.raster.ground_ids(x, y)

    def _sky_ids(self, frame: _Frame, width: int, v: np.ndarray) -> np.ndarray:
        """Sky levels (h, width) by the tangent of the elevation, evaluated per row at every 16th column."""
        u = np.arange(8, width + 16, 16, dtype=np.float32)[: -(-width // 16)]  # centres of 16-pixel blocks
        A = frame.A.astype(np.float32)
        F = frame.forward_xy[0] * A[0] + frame.forward_xy[1] * A[1]  # (3,) ray component along the heading
        fwd = (F[0] * u)[None, :] + (F[1] * v + F[2])[:, None]  # (h, Wb)
        down = (A[2, 0] * u)[None, :] + (A[2, 1] * v + A[2, 2])[:, None]  # (h, Wb)
        level = np.clip(down / np.maximum(fwd, np.float32(1e-6)) * np.float32(-1.0 / SKY_TAN_STEP), 0, SKY_LEVELS - 1)
        return np.repeat(level.astype(np.uint8) + np.uint8(SKY_ID0), 16, axis=1)[:, :width]

    def _finish(self, packed: np.ndarray, rng: np.random.Generator | None, outside: np.ndarray) -> np.ndarray:
        """Add sensor noise, black out uncovered pixels, unpack to (H, W, 3) uint8 RGB."""
        H, W = packed.shape
        if rng is not None and self._noise is not None:
            if packed.size <= self._noise.size // 2:
                start = int(rng.integers(0, self._noise.size - packed.size + 1))
                packed += self._noise[start : start + packed.size].reshape(H, W)
            else:  # large images (CAMERA route): fresh samples
                normal = rng.standard_normal((H, W, 3), dtype=np.float32) * np.float32(self.lighting.noise_std)
                packed += _pack(np.clip(np.round(normal), -NOISE_CLIP, NOISE_CLIP) + 2 * NOISE_CLIP)
        else:
            packed += _pack(np.full(3, 2.0 * NOISE_CLIP))
        packed.reshape(-1)[outside] = 0
        channels = packed.view(np.uint8).reshape(H, W, 4)
        out = np.empty((H, W, 3), dtype=np.uint8)
        for k in range(3):
            out[..., k] = channels[..., k]
        return out


# -------------------------------------------------------------------------------------------- vehicles


def _prepare_vehicles(vehicles: Sequence[VehicleBox], c: np.ndarray, lighting: Lighting, origin_xy) -> _Vehicles:
    """Camera-independent constants of all boxes at once (``c``: camera, local coordinates)."""
    V = len(vehicles)
    pose = np.array([np.asarray(v.pose_ned, dtype=np.float64) for v in vehicles]).reshape(V, 6)
    size = np.array([[v.length_m, v.width_m, v.height_m] for v in vehicles], dtype=np.float64)  # (V, 3)
    if not (np.isfinite(pose).all() and (size > 0).all()):
        raise SimulatorError("a VehicleBox has a non-finite pose_ned or a size <= 0; expected finite "
                             "(x, y, z, roll, pitch, yaw) and positive length_m, width_m, height_m")
    R = cam.rot_from_euler(pose[:, 3:6]).reshape(V, 3, 3)  # world from box
    rel = pose[:, :3] - np.array([origin_xy[0], origin_xy[1], 0.0]) - c  # (V, 3) box origin minus camera
    half = np.stack([size[:, 0] / 2, size[:, 1] / 2, size[:, 2]], axis=1)  # (V, 3)
    foot = np.concatenate([half[:, :2] + SHADOW_MARGIN_M, np.zeros((V, 1))], axis=1)  # (V, 3)
    corners = rel[:, None] + (_BOX_CORNERS * half[:, None]) @ R.transpose(0, 2, 1)  # (V, 8, 3)
    foot_corners = rel[:, None] + (_FOOT_CORNERS * foot[:, None]) @ R.transpose(0, 2, 1)  # (V, 4, 3)
    planes = np.cross(foot_corners[:, _FOOT_EDGES[:, 0]], foot_corners[:, _FOOT_EDGES[:, 1]])  # (V, 4, 3)
    planes *= np.sign(np.einsum("vej,vj->ve", planes, foot_corners.mean(axis=1)))[..., None]  # inward
    o = -np.einsum("vji,vj->vi", R, rel)  # (V, 3) camera in box frames: R^T (c - p)
    box_lo = np.stack([-half[:, 0], -half[:, 1], -half[:, 2]], axis=1)
    box_hi = np.stack([half[:, 0], half[:, 1], np.zeros(V)], axis=1)
    light = _light(lighting, _FACE_NORMALS @ R.transpose(0, 2, 1))  # (V, 6) per face
    rgb = np.array([v.rgb for v in vehicles], dtype=np.float64)  # (V, 3)
    brake = np.array([v.brake_lights for v in vehicles])[:, None]  # (V, 1)
    lamp = np.where(brake, np.asarray(BRAKE_ON_RGB) * lighting.exposure, np.outer(light[:, 0], BRAKE_OFF_RGB))
    colours = np.concatenate([light[..., None] * rgb[:, None], light[..., None] * np.asarray(GLASS_RGB),
                              light[..., None] * np.asarray(UNDERBODY_RGB), lamp[:, None]], axis=1)  # (V, 19, 3)
    return _Vehicles(R, o, box_lo - o, box_hi - o, corners, foot_corners, planes, _pack(colours), size)


def _draw_vehicles(packed: np.ndarray, inv: np.ndarray, A: np.ndarray, boxes: _Vehicles) -> None:
    """Contact shadows, then boxes against the inverse-depth buffer ``inv`` (updated), for one camera."""
    Ainv_T = np.linalg.inv(A).T
    q = boxes.corners @ Ainv_T  # (V, 8, 3) = lambda * (u, v, 1)
    box_rects, near = _rects(q, _BOX_EDGES, inv.shape), q[..., 2].min(axis=1) < 1.0  # near: may reach NEAR_M
    shadow_rects = _rects(boxes.foot @ Ainv_T, _FOOT_EDGES, inv.shape)
    edges = (boxes.foot_planes @ A).astype(np.float32)  # (V, 4, 3): plane normal . ray > 0 inside
    B = (boxes.R.transpose(0, 2, 1) @ A).astype(np.float32)  # (V, 3, 3) box-frame ray of a pixel
    for i in range(len(B)):
        _shadow(packed, inv, shadow_rects[i], edges[i])
    for i in range(len(B)):
        _draw_box(packed, inv, box_rects[i], B[i], boxes, i, bool(near[i]))


def _rects(q: np.ndarray, edges: np.ndarray, shape) -> np.ndarray:
    """Pixel rectangles (V, 4) [r0, r1, c0, c1] of convex shapes (V, N, 3) = lambda (u, v, 1), near-clipped."""
    H, W = shape
    a, b = q[:, edges[:, 0]], q[:, edges[:, 1]]  # (V, E, 3)
    la, lb = a[..., 2] - NEAR_M, b[..., 2] - NEAR_M
    cross = la * lb < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(cross, la / (la - lb), 0.0)[..., None]
    pts = np.concatenate([q, a + (b - a) * t], axis=1)  # (V, N + E, 3)
    ok = np.concatenate([q[..., 2] > NEAR_M, cross], axis=1)[..., None]  # (V, N + E, 1)
    uv = pts[..., :2] / np.where(ok, pts[..., 2:], 1.0)
    lo = np.floor(np.where(ok, uv, np.inf).min(axis=1))  # (V, 2) u, v
    hi = np.ceil(np.where(ok, uv, -np.inf).max(axis=1)) + 1
    lo, hi = np.clip(lo, 0, [W, H]).astype(int), np.clip(hi, 0, [W, H]).astype(int)
    return np.stack([lo[:, 1], hi[:, 1], lo[:, 0], hi[:, 0]], axis=1)


def _shadow(packed: np.ndarray, inv: np.ndarray, rect: np.ndarray, edges: np.ndarray) -> None:
    """Darken (to 5/8) the ground seen through a shadow quad: ``e . (u, v, 1) > 0`` for its 4 edges (4, 3)."""
    r0, r1, c0, c1 = rect
    if r1 <= r0 or c1 <= c0:
        return
    u, v = np.arange(c0, c1, dtype=np.float32), np.arange(r0, r1, dtype=np.float32)
    inside = inv[r0:r1, c0:c1] > 0  # (h, w) ground
    for e in edges:
        inside &= (e[0] * u + e[2])[None, :] > (-e[1] * v)[:, None]
    sub = packed[r0:r1, c0:c1]
    x = sub[inside]
    sub[inside] = x - ((x >> 2) & np.uint32(0x3F3F3F3F)) - ((x >> 3) & np.uint32(0x1F1F1F1F))


def _draw_box(packed, inv, rect, B: np.ndarray, boxes: _Vehicles, i: int, near: bool) -> None:
    """Slab ray/box test over ``rect``; write colour and inverse depth where the box is the nearest surface.

    Per axis: if the camera is outside the slab, rays enter through the face towards the camera (an entry face)
    and leave through the other; if inside, only the exit counts.
    """
    r0, r1, c0, c1 = rect
    if r1 <= r0 or c1 <= c0:
        return
    u, v = np.arange(c0, c1, dtype=np.float32), np.arange(r0, r1, dtype=np.float32)
    w = (B[:, 0, None] * u)[:, None, :] + (B[:, 1, None] * v + B[:, 2, None])[:, :, None]  # (3, h, w)
    lo, hi = boxes.lo[i].tolist(), boxes.hi[i].tolist()  # slab planes minus the camera
    t_in, t_out, entries = None, None, []
    with np.errstate(divide="ignore", invalid="ignore"):
        for k in range(3):
            t_far = np.float32(1.0) / w[k]
            if lo[k] > 0 or hi[k] < 0:  # outside the slab: enters through face 2k (lo) or 2k + 1 (hi)
                t_near = t_far * (lo[k] if lo[k] > 0 else hi[k])
                t_far *= hi[k] if lo[k] > 0 else lo[k]
                entries.append((2 * k + int(lo[k] <= 0), t_near))
                t_in = t_near if t_in is None else np.maximum(t_in, t_near)
            else:
                t_lo = t_far * lo[k]
                t_far *= hi[k]
                np.maximum(t_far, t_lo, out=t_far)
            t_out = t_far if t_out is None else np.minimum(t_out, t_far, out=t_out)
    if t_in is None:  # the camera is inside the box
        return
    inv_sub = inv[r0:r1, c0:c1]
    hit = t_out >= t_in
    hit &= t_in * inv_sub < 1.0  # nearer than what is there (sky: inv <= 0)
    if near:
        hit &= t_in > NEAR_M
    if not hit.any():
        return
    sub, o = packed[r0:r1, c0:c1], boxes.o[i].astype(np.float32)
    for face, t_near in entries:
        m = hit if len(entries) == 1 else hit & (t_near >= t_in)
        t = t_in[m]
        used = (0, 2) if face in (2, 3) else (1, 2) if face < 2 else ()  # lateral and vertical axes
        wm = [w[k][m] if k in used else None for k in range(3)]
        sub[m] = boxes.colours[i].take(_face_detail(face, t, wm, o, boxes.size_m[i]))
    inv_sub[hit] = np.float32(1.0) / t_in[hit]


def _face_detail(face: int, t: np.ndarray, w: list[np.ndarray], o: np.ndarray, size_m: np.ndarray) -> np.ndarray:
    """Colour index (n,) into ``_Vehicles.colours`` for hits ``o + t w`` (w: 3 x (n,) or None where unused) on
    one face: body, glass (+6) or underbody (+12) of the face, or 18 for a rear light."""
    if face >= 4:
        return np.full(t.shape, face)
    length, width, height = size_m
    up = -(o[2] + t * w[2])  # height above the box's bottom
    lateral = np.abs(o[1] + t * w[1]) if face < 2 else np.abs(o[0] + t * w[0])
    inner = width / 2 - PILLAR_M if face < 2 else length / 2 - 3 * PILLAR_M
    glass = (up > GLASS_BAND[0] * height) & (up < GLASS_BAND[1] * height) & (lateral < inner)
    index = face + 6 * glass + 12 * (up < UNDERBODY_M)
    if face == 0:  # rear lights
        from_side = width / 2 - lateral
        lamp = (up > LIGHT_BAND[0] * height) & (up < LIGHT_BAND[1] * height)
        lamp &= (from_side > LIGHT_INSET_M[0]) & (from_side < LIGHT_INSET_M[1])
        index[lamp] = 18
    return index
