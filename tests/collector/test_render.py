"""Tests of collector.builtin.render (and its ground raster): geometry, occlusion, routes, determinism.

Every check projects world points with the contract's own camera math (world -> device via the ego pose ->
pixel in MEDMODEL / SBIGMODEL) and looks at the rendered pixel there, so renderer and labels must agree.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from sunnypilot_training.collector.builtin.render import boxes as boxes_module
from sunnypilot_training.collector.builtin.render import renderer as render_module
from sunnypilot_training.collector.builtin.render.raster import GroundRaster, Material, hash_u32, texture_level
from sunnypilot_training.collector.builtin.render.renderer import Renderer, rear_light_centres_ned
from sunnypilot_training.collector.builtin.world import (
    Lighting,
    Marking,
    MarkingColor,
    MarkingStyle,
    RoadSurface,
    StopLine,
    VehicleBox,
    World,
)
from sunnypilot_training.contract import camera as cam
from sunnypilot_training.errors import SimulatorError

HEIGHT_M = cam.CAMERA_HEIGHT_M
EGO_S_M = 20.0
NO_NOISE = Lighting(noise_std=0.0)
BLUE, RED = (40, 60, 200), (200, 40, 40)


def _road(grade_from_m: float | None = None, grade: float = 0.04, radius_m: float | None = None) -> RoadSurface:
    """A 400 m three-lane road (3.6 m lanes, reference line = centre of the middle lane), flat or graded."""
    s = np.arange(0.0, 400.25, 0.5)
    heading = np.zeros_like(s) if radius_m is None else s / radius_m
    x = s if radius_m is None else radius_m * np.sin(heading)
    y = np.zeros_like(s) if radius_m is None else radius_m * (1 - np.cos(heading))
    z = np.zeros_like(s) if grade_from_m is None else -grade * np.maximum(s - grade_from_m, 0.0)  # z down
    markings = [
        Marking(-5.4, MarkingStyle.SOLID, MarkingColor.YELLOW),
        Marking(-1.8, MarkingStyle.SOLID),
        Marking(1.8, MarkingStyle.DASHED),  # 3 m dash, 9 m gap, phase from s = 0
        Marking(5.4, MarkingStyle.SOLID),
    ]
    grade_rad = np.arctan(-np.gradient(z, s))
    return RoadSurface("main", np.stack([x, y, z], 1), s, heading, grade_rad, -5.9, 5.9, markings, (-3.6, 0.0, 3.6))


def _pose_on(road: RoadSurface, s_m: float, d_m: float = 0.0, up_m: float = 0.0) -> np.ndarray:
    p = road.point_at(s_m, d_m)
    pitch, yaw = np.interp(s_m, road.s_m, road.grade_rad), np.interp(s_m, road.s_m, road.heading_rad)
    return np.array([p[0], p[1], p[2] - up_m, 0.0, pitch, yaw])


@cache
def _renderer(kind: str = "flat", lighting: Lighting = NO_NOISE) -> tuple[Renderer, RoadSurface]:
    road = {"flat": _road(), "uphill": _road(grade_from_m=EGO_S_M + 20.0), "curve": _road(20.0, 0.03, 150.0)}[kind]
    return Renderer(World([road], [StopLine("main", 100.0, -5.4, 0.0)]), lighting), road


def _ego(road: RoadSurface) -> np.ndarray:
    return _pose_on(road, EGO_S_M, 0.0, HEIGHT_M)


def _pixels(points_ned: np.ndarray, ego: np.ndarray, model: cam.CameraModel) -> np.ndarray:
    """Nearest pixel (N, 2) int (row, column) of world points (N, 3) seen from the ego pose."""
    device = (np.atleast_2d(points_ned) - ego[:3]) @ cam.rot_from_euler(ego[3:6])  # R^T (p - c), row-wise
    uv, in_front = cam.project_points_device(device, model)
    assert in_front.all()
    rc = np.floor(uv[:, ::-1] + 0.5).astype(int)
    assert ((rc >= 0) & (rc < [model.height_px, model.width_px])).all(), f"points outside {model.name}: {rc}"
    return rc


def _at(image: np.ndarray, rc: np.ndarray) -> np.ndarray:
    return image[rc[:, 0], rc[:, 1]].astype(int)  # (N, 3)


def _brightness(image, rc) -> np.ndarray:
    """Brightest mean-RGB (N,) in the 3 x 3 pixels around each (row, column): thin lines may fall between the
    nearest pixel centre and its neighbour."""
    H, W = image.shape[:2]
    patches = [_at(image, np.clip(rc + [dr, dc], 0, [H - 1, W - 1])) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    return np.max([p.mean(axis=1) for p in patches], axis=0)


IMG_AHEAD_M = np.array([10.0, 15.0, 20.0, 30.0, 45.0, 60.0])
BIG_AHEAD_M = np.array([6.0, 8.0, 10.0, 15.0, 20.0, 30.0])  # nearer than ~5.6 m the road is below big_img


def _marking_contrast(renderer, road, ego, offset_m: float, img_ahead_m, big_ahead_m) -> None:
    """Pixels on the marking are paint-bright; 0.5 m to either side they are asphalt-dark (both images)."""
    img, big_img = renderer.render(ego, [], None)
    for image, model, ahead in ((img, cam.MEDMODEL, img_ahead_m), (big_img, cam.SBIGMODEL, big_ahead_m)):
        s = EGO_S_M + ahead
        on = _brightness(image, _pixels(road.point_at(s, offset_m), ego, model))
        left = _brightness(image, _pixels(road.point_at(s, offset_m - 0.5), ego, model))
        right = _brightness(image, _pixels(road.point_at(s, offset_m + 0.5), ego, model))
        assert (on > 150).all() and (left < 110).all() and (right < 110).all(), (model.name, on, left, right)


def test_solid_marking_on_a_flat_road_lands_where_projected() -> None:
    renderer, road = _renderer("flat")
    _marking_contrast(renderer, road, _ego(road), -1.8, IMG_AHEAD_M, BIG_AHEAD_M)


def test_dashes_and_gaps_follow_arc_length() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    img, _ = renderer.render(ego, [], None)
    k = np.arange(3, 7)  # dashes 3..6: their middles lie 17.5..53.5 m ahead, their gaps 23.5..59.5 m
    dash = _brightness(img, _pixels(road.point_at(12.0 * k + 1.5, 1.8), ego, cam.MEDMODEL))
    gap = _brightness(img, _pixels(road.point_at(12.0 * k + 7.5, 1.8), ego, cam.MEDMODEL))
    assert (dash > 150).all() and (gap < 110).all(), (dash, gap)


def test_yellow_marking_is_yellow() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    _, big_img = renderer.render(ego, [], None)
    rc = _pixels(road.point_at(EGO_S_M + np.array([12.0, 20.0, 30.0]), -5.4), ego, cam.SBIGMODEL)
    rgb = np.stack([_at(big_img, rc + [0, dc]) for dc in (-1, 0, 1)])  # (3, N, 3) along the row
    assert ((rgb[..., 0] > rgb[..., 2] + 80) & (rgb[..., 1] > rgb[..., 2] + 60)).any(axis=0).all(), rgb


def test_marking_on_an_uphill_grade_uses_the_height_field() -> None:
    renderer, road = _renderer("uphill")
    ego = _ego(road)
    _marking_contrast(renderer, road, ego, -1.8, np.array([10.0, 25.0, 35.0, 45.0, 60.0]), BIG_AHEAD_M + 2.0)
    # the same points on flat ground would project far lower in the image: the height field matters
    far = road.point_at(EGO_S_M + 60.0, -1.8)
    flat, true_row = far * [1.0, 1.0, 0.0], _pixels(far, ego, cam.MEDMODEL)[0, 0]
    assert _pixels(flat, ego, cam.MEDMODEL)[0, 0] - true_row > 15


def test_curved_graded_road_markings_land_where_projected() -> None:
    renderer, road = _renderer("curve")
    # beyond ~30 m this curve turns the line almost parallel to the image rows, where a 3 x 3 patch is too small
    _marking_contrast(renderer, road, _ego(road), 1.8 - 3.6, IMG_AHEAD_M[:-2], BIG_AHEAD_M[:-1])


def _is_sky(rgb: np.ndarray) -> np.ndarray:
    """Bright and bluish: sky and horizon haze; not grass, asphalt (dark) or paint (white paint is warmer)."""
    rgb = rgb.astype(int)
    return (rgb.mean(axis=-1) > 150) & (rgb[..., 2] > rgb[..., 0])


@pytest.mark.parametrize("pitch_rad", [0.0, 0.02])
def test_horizon_row_follows_the_pitch(pitch_rad: float) -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road) + [0, 0, 0, 0, pitch_rad, 0]
    img, big_img = renderer.render(ego, [], None)
    for image, model in ((img, cam.MEDMODEL), (big_img, cam.SBIGMODEL)):
        horizon = model.cy_px + model.focal_px * np.tan(pitch_rad)  # nose up moves the horizon down
        assert _is_sky(image[: int(horizon) - 3]).all(), model.name
        assert not _is_sky(image[int(horizon) + 4 :]).any(), model.name


def _box_ahead(road, rear_ahead_m: float, d_m: float = 0.0, **kw) -> VehicleBox:
    box = VehicleBox(np.zeros(6), **kw)
    return replace(box, pose_ned=_pose_on(road, EGO_S_M + rear_ahead_m + box.length_m / 2, d_m))


def _rear_centre(box: VehicleBox) -> np.ndarray:
    return box.pose_ned[:3] + [-box.length_m / 2, 0.0, -box.height_m / 2]  # (straight road: yaw 0)


def test_vehicle_occludes_the_road_and_farther_vehicles() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    near, far = _box_ahead(road, 20.0, rgb=BLUE), _box_ahead(road, 40.0, rgb=RED)
    both = renderer.render(ego, [far, near], None)
    assert all(np.array_equal(a, b) for a, b in zip(both, renderer.render(ego, [near, far], None)))  # depth test
    alone = {"near": renderer.render(ego, [near], None), "far": renderer.render(ego, [far], None),
             "none": renderer.render(ego, [], None)}
    for k, model in enumerate((cam.MEDMODEL, cam.SBIGMODEL)):
        rear, hidden = _pixels(_rear_centre(near), ego, model), _pixels(_rear_centre(far), ego, model)
        behind = _pixels(road.point_at(EGO_S_M + 30.0, 0.0), ego, model)  # road surface hidden by the near box
        rgb = _at(both[k], rear)
        assert (rgb[:, 2] > rgb[:, 0] + 40).all() and (rgb[:, 2] > rgb[:, 1] + 40).all(), (model.name, rgb)
        far_alone = _at(alone["far"][k], hidden)
        assert (far_alone[:, 0] > far_alone[:, 2] + 40).all(), (model.name, far_alone)  # red when unhidden
        assert np.array_equal(_at(both[k], hidden), _at(alone["near"][k], hidden))
        road_rgb = _at(alone["none"][k], behind)
        assert road_rgb.mean() < 110 and np.ptp(road_rgb) < 15, (model.name, road_rgb)  # grey asphalt
        assert np.array_equal(_at(both[k], behind), _at(alone["near"][k], behind))
        assert not np.array_equal(_at(both[k], behind), road_rgb)


def test_vehicle_beside_a_nearer_one_is_visible() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    beside = _box_ahead(road, 40.0, d_m=3.6, rgb=RED)
    img, _ = renderer.render(ego, [_box_ahead(road, 20.0, rgb=BLUE), beside], None)
    rgb = _at(img, _pixels(_rear_centre(beside), ego, cam.MEDMODEL))
    assert (rgb[:, 0] > rgb[:, 2] + 60).all(), rgb


def test_brake_lights_turn_bright_red() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    off = _box_ahead(road, 20.0, rgb=(150, 150, 160), brake_lights=False)
    on = replace(off, brake_lights=True)
    for image_off, image_on, model in zip(renderer.render(ego, [off], None), renderer.render(ego, [on], None),
                                          (cam.MEDMODEL, cam.SBIGMODEL)):
        rc = _pixels(rear_light_centres_ned(on), ego, model)
        lit, unlit = _at(image_on, rc), _at(image_off, rc)
        assert (lit[:, 0] > 200).all() and (lit[:, 0] > lit[:, 1] + 120).all(), (model.name, lit)
        assert (unlit[:, 0] < lit[:, 0] - 60).all() and (unlit[:, 0] > unlit[:, 1] + 30).all(), (model.name, unlit)


@pytest.mark.parametrize("rpy", [None, (0.01, 0.03, -0.02)])
def test_direct_route_agrees_with_camera_route(rpy) -> None:
    _, road = _renderer("curve")
    renderer = Renderer(World([road]), NO_NOISE, device_from_calib_rpy=rpy)
    ego = _ego(road) + [0.0, 0.0, 0.0, 0.01, -0.005, 0.02]
    vehicles = [_box_ahead(road, 15.0, d_m=-3.6, rgb=BLUE, brake_lights=True), _box_ahead(road, 30.0, rgb=RED)]
    direct = renderer.render(ego, vehicles, None)
    warped = renderer.render_via_camera(ego, vehicles, None)
    for a, b, name in zip(direct, warped, ("img", "big_img")):
        close = np.abs(a.astype(int) - b.astype(int)).max(axis=-1) <= 8
        assert close.mean() >= 0.97, (name, close.mean())


def test_pixels_the_road_camera_does_not_cover_repeat_its_edge_as_modeld_warps_them() -> None:
    """modeld's warp clamps to the camera's edge: nothing is black. Pitched up by 2 degrees, C3_ROAD's last row
    lies ~30 rows above medmodel's bottom, and those rows repeat it, as the CAMERA route (a real warp) shows."""
    renderer, road = _renderer("flat")
    img, big_img = renderer.render(_ego(road), [], None)
    assert img.shape == big_img.shape == (256, 512, 3) and img.dtype == big_img.dtype == np.uint8
    assert (img > 0).any(axis=-1).all()
    assert (big_img > 0).any(axis=-1).all()  # C3_WIDE covers all of sbigmodel
    pitched = Renderer(World([road]), Lighting(noise_std=0.0), device_from_calib_rpy=[0.0, np.radians(-2.0), 0.0])
    ego = _ego(road)
    img = pitched.render(ego, [], None)[0]
    repeated = [np.array_equal(img[r], img[-1]) for r in range(256)]
    assert 20 <= sum(repeated) <= 45 and all(repeated[-sum(repeated):])
    warped = pitched.render_via_camera(ego, [], None)[0]
    close = np.abs(warped.astype(int) - img.astype(int)).max(axis=-1) <= 8
    assert close[-40:].mean() > 0.9


def test_rendering_is_deterministic_and_noise_follows_the_generator() -> None:
    _, road = _renderer("flat")
    noisy = Renderer(World([road]), Lighting(noise_std=3.0))
    ego, vehicles = _ego(road), [_box_ahead(road, 20.0)]
    a = noisy.render(ego, vehicles, np.random.default_rng(7))
    b = noisy.render(ego, vehicles, np.random.default_rng(7))
    c = noisy.render(ego, vehicles, np.random.default_rng(8))
    clean = noisy.render(ego, vehicles, None)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    residual = a[1].astype(float) - clean[1]
    mid = (clean[1] > 20) & (clean[1] < 235)  # away from clipping
    assert 2.5 < residual[mid].std() < 3.5 and abs(residual[mid].mean()) < 0.2
    quiet, _ = _renderer("flat")
    x = quiet.render(ego, vehicles, np.random.default_rng(1))
    y = quiet.render(ego, vehicles, np.random.default_rng(2))
    assert all(np.array_equal(p, q) for p, q in zip(x, y))


def test_bad_poses_are_rejected() -> None:
    renderer, road = _renderer("flat")
    with pytest.raises(SimulatorError, match="ego_pose_ned"):
        renderer.render(np.zeros(5), [], None)
    with pytest.raises(SimulatorError, match="VehicleBox"):
        renderer.render(_ego(road), [VehicleBox(np.full(6, np.nan))], None)


def test_raster_resolves_edges_below_a_texel_on_a_curve() -> None:
    road = _road(20.0, 0.03, 150.0)
    raster = GroundRaster(World([road]))
    rng = np.random.default_rng(0)
    s, d = rng.uniform(5.0, 395.0, 20000), rng.uniform(-2.3, -1.3, 20000)  # around the solid line at -1.8
    expected = np.where(np.abs(d + 1.8) <= 0.075, Material.WHITE_PAINT, Material.ASPHALT)
    distance = np.abs(np.abs(d + 1.8) - 0.075)  # to the nearest paint edge
    p = road.point_at(s, d)
    wrong = raster.material_at(p[:, 0], p[:, 1]) != expected
    assert wrong.mean() < 0.002 and (distance[wrong] < 0.02).all()  # 10 cm texels, edges within 2 cm
    assert np.allclose(raster.height_at(p[:, 0], p[:, 1]), p[:, 2], atol=0.02)
    assert np.isnan(raster.height_at(p[:1, 0] + 500.0, p[:1, 1] + 500.0)).all()


def test_big_img_middle_is_img_at_half_resolution() -> None:
    """SBIGMODEL sees every second pixel of MEDMODEL in the middle of its bottom half: that region is img[::2, ::2]
    (before noise), vehicles and shadows included."""
    assert render_module.nested_region(cam.MEDMODEL, cam.SBIGMODEL) == (128, 256, 128, 384)
    renderer, road = _renderer("curve")
    ego = _ego(road) + [0.0, 0.0, 0.0, 0.0, 0.01, 0.0]
    vehicles = [_box_ahead(road, 12.0, rgb=RED), _box_ahead(road, 25.0, 3.6)]
    img, big_img = renderer.render(ego, vehicles, None)
    seen = img[::2, ::2].any(axis=-1)  # img's black rows lie outside the road camera; big_img's do not
    assert seen.mean() > 0.95
    assert np.array_equal(big_img[128:, 128:384][seen], img[::2, ::2][seen])
    # the same rays traced in SBIGMODEL itself: identical outside the middle, nearly identical inside
    traced = renderer.render_camera(cam.SBIGMODEL, ego, vehicles, None, calibrated=True)
    assert np.array_equal(traced[:128], big_img[:128]) and np.array_equal(traced[:, :128], big_img[:, :128])
    assert np.array_equal(traced[:, 384:], big_img[:, 384:])
    assert (np.abs(traced.astype(int) - big_img).max(axis=-1) <= 8).mean() > 0.99


def _traffic(road: RoadSurface, n: int, seed: int) -> list[VehicleBox]:
    """``n`` boxes of random sizes and colours scattered over the lanes from 4 m behind to 150 m ahead, some
    braking, some overlapping in the image (and one straddling the camera's plane, beside the ego)."""
    rng = np.random.default_rng(seed)
    boxes = [_box_ahead(road, -2.0, 3.6, length_m=4.6)]  # beside and behind: crosses the near plane
    for _ in range(n - 1):
        kind = dict(length_m=rng.uniform(4.0, 12.0), width_m=rng.uniform(1.7, 2.5), height_m=rng.uniform(1.4, 3.6))
        boxes.append(_box_ahead(road, rng.uniform(-4.0, 150.0), rng.choice([-3.6, 0.0, 3.6]), rgb=tuple(
            int(c) for c in rng.integers(0, 256, 3)), brake_lights=bool(rng.integers(2)), **kind))
    return boxes


def test_many_vehicles_do_not_depend_on_list_order_or_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    """The depth test makes the list order irrelevant; small boxes are drawn together and large ones one at a
    time, and the split changes nothing."""
    renderer, road = _renderer("curve")
    ego = _ego(road)
    boxes = _traffic(road, 24, seed=3)
    reference = renderer.render(ego, boxes, None)
    shuffled = [boxes[i] for i in np.random.default_rng(4).permutation(len(boxes))]
    assert all(np.array_equal(a, b) for a, b in zip(reference, renderer.render(ego, shuffled, None)))
    for batch_max_px in (0, 10**9):  # every box alone / all boxes together
        monkeypatch.setattr(boxes_module, "BATCH_MAX_PX", batch_max_px)
        assert all(np.array_equal(a, b) for a, b in zip(reference, renderer.render(ego, boxes, None)))
    none = renderer.render(ego, [], None)
    assert (reference[0] != none[0]).any(axis=-1).mean() > 0.02  # the boxes are in the picture


def test_sparse_grid_rows_match_flat_index() -> None:
    raster = _renderer("curve")[0].raster
    rng = np.random.default_rng(0)
    for grid in (raster.materials, raster.heights):
        side, offsets = 1 << grid.tile_shift, grid.row_offsets()
        ix = rng.integers(0, grid.tile_map.shape[0] * side, 5000).astype(np.int32)
        iy = rng.integers(0, grid.tile_map.shape[1] * side, 5000).astype(np.int32)
        assert np.array_equal(grid.rows(ix.copy(), iy.copy(), offsets), grid.flat_index(ix.copy(), iy.copy()))


def test_texture_hash_broadcasts_like_elementwise() -> None:
    ix, iy = np.arange(-3, 90, 7), np.arange(5, 300, 11)
    X, Y = np.meshgrid(ix, iy, indexing="ij")
    assert np.array_equal(hash_u32(ix[:, None], iy[None, :], 0x1234), hash_u32(X, Y, 0x1234))
    assert texture_level(X, Y).max() <= 15


def test_contact_shadow_darkens_the_road_just_behind_a_vehicle() -> None:
    renderer, road = _renderer("flat")
    ego = _ego(road)
    box = _box_ahead(road, 15.0, d_m=0.0)  # rear face 15 m ahead; the shadow reaches 0.25 m beyond it
    with_box, without = renderer.render(ego, [box], None), renderer.render(ego, [], None)
    for k, model in enumerate((cam.MEDMODEL, cam.SBIGMODEL)):
        in_shadow = _pixels(road.point_at(EGO_S_M + 15.0 - np.array([0.1, 0.15]), 0.3), ego, model)
        lit = _pixels(road.point_at(EGO_S_M + 15.0 - np.array([0.6, 1.0]), 0.3), ego, model)
        ratio = _at(with_box[k], in_shadow).mean(axis=1) / _at(without[k], in_shadow).mean(axis=1)
        assert ((ratio > 0.5) & (ratio < 0.75)).all(), (model.name, ratio)  # keeps 5/8 of the light
        assert np.array_equal(_at(with_box[k], lit), _at(without[k], lit)), model.name


def test_a_box_drawn_twice_shows_one_of_its_two_colours() -> None:
    """Equally near hits on a pixel are resolved as if the boxes were drawn one after the other."""
    renderer, road = _renderer("flat")
    ego = _ego(road)
    red = _box_ahead(road, 15.0, rgb=RED, brake_lights=True)
    blue = replace(red, rgb=BLUE)
    both = renderer.render(ego, [red, blue], None)
    assert all(np.array_equal(a, b) for a, b in zip(both, renderer.render(ego, [red, blue], None)))
    for image, only_red, only_blue in zip(both, renderer.render(ego, [red], None), renderer.render(ego, [blue], None)):
        body = (only_red != only_blue).any(axis=-1)  # (the ground around it has two shadows now)
        assert body.sum() > 100
        assert ((image == only_red).all(axis=-1) | (image == only_blue).all(axis=-1))[body].all()


def test_paint_wear_and_verges_come_from_the_lighting() -> None:
    """Fully worn paint is drawn in the asphalt's colour; the verges take the episode's colour."""
    from sunnypilot_training.collector.builtin.render.raster import TEXTURE_LEVELS
    from sunnypilot_training.collector.builtin.render.shading import palette

    def rows(lighting: Lighting, material: Material) -> np.ndarray:
        return palette(lighting)[material * TEXTURE_LEVELS : (material + 1) * TEXTURE_LEVELS]

    fresh = Lighting(paint_wear=0.0, asphalt_contrast=0.03)
    worn = replace(fresh, paint_wear=1.0)
    np.testing.assert_array_equal(rows(worn, Material.WHITE_PAINT), rows(worn, Material.ASPHALT))
    np.testing.assert_array_equal(rows(worn, Material.YELLOW_PAINT), rows(worn, Material.ASPHALT))
    assert (rows(fresh, Material.WHITE_PAINT) != rows(fresh, Material.ASPHALT)).all()
    snowy = replace(fresh, grass_rgb=(215, 218, 225))
    assert (rows(snowy, Material.GRASS) != rows(fresh, Material.GRASS)).all()
    np.testing.assert_array_equal(rows(snowy, Material.ASPHALT), rows(fresh, Material.ASPHALT))
