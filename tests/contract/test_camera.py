"""Tests of contract.camera: frames, Euler convention, projection and the model-frame warp."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.contract import camera as cam
from sunnypilot_training.errors import ContractError

# A point on the road 20 m ahead, 1.5 m to the left, calibrated FRD frame (z down: the road is below).
ROAD_POINT_M = np.array([20.0, -1.5, cam.CAMERA_HEIGHT_M])
CALIB_RPY_RAD = np.array([0.01, 0.02, -0.03])  # roll, pitch, yaw of device_from_calib

# (device camera, model frame) pairs as modeld warps them: road -> img, wide -> big_img
WARP_PAIRS = [
    (cam.C3_ROAD, cam.MEDMODEL),
    (cam.C3_WIDE, cam.SBIGMODEL),
    (cam.C4_ROAD, cam.MEDMODEL),
    (cam.C4_WIDE, cam.SBIGMODEL),
]


def _hand_projection(point_m: np.ndarray, camera: cam.CameraModel) -> np.ndarray:
    x, y, z = point_m
    return np.array([camera.cx_px + camera.focal_px * y / x, camera.cy_px + camera.focal_px * z / x])


def _blob_image(camera: cam.CameraModel, centre_px: np.ndarray, sigma_px: float) -> np.ndarray:
    """uint8 (H, W) camera image, black except a Gaussian dot (peak 255) at ``centre_px`` (u, v)."""
    u = np.arange(camera.width_px, dtype=np.float64)
    v = np.arange(camera.height_px, dtype=np.float64)[:, None]
    r2 = (u - centre_px[0]) ** 2 + (v - centre_px[1]) ** 2  # (H, W)
    return np.floor(255.0 * np.exp(-r2 / (2 * sigma_px**2)) + 0.5).astype(np.uint8)


def _centroid_px(image: np.ndarray) -> np.ndarray:
    w = image.astype(np.float64)
    v, u = np.indices(image.shape)
    return np.array([(u * w).sum() / w.sum(), (v * w).sum() / w.sum()])


# ---------------------------------------------------------------------------------------------- constants


def test_camera_constants_follow_the_contract():
    assert (cam.C3_ROAD.width_px, cam.C3_ROAD.height_px, cam.C3_ROAD.focal_px) == (1928, 1208, 2648.0)
    assert (cam.C3_ROAD.cx_px, cam.C3_ROAD.cy_px) == (964.0, 604.0)
    assert cam.C3_WIDE.focal_px == 567.0
    assert (cam.C4_ROAD.width_px, cam.C4_ROAD.height_px, cam.C4_ROAD.focal_px) == (1344, 760, 1141.5)
    assert cam.C4_WIDE.focal_px == 425.25
    assert (cam.MEDMODEL.focal_px, cam.MEDMODEL.cx_px, cam.MEDMODEL.cy_px) == (910.0, 256.0, 47.6)
    assert (cam.SBIGMODEL.focal_px, cam.SBIGMODEL.cx_px, cam.SBIGMODEL.cy_px) == (455.0, 256.0, 151.8)
    for model in (cam.MEDMODEL, cam.SBIGMODEL):
        assert model.size_px == (cam.MODEL_FRAME_WIDTH_PX, cam.MODEL_FRAME_HEIGHT_PX) == (512, 256)
    assert cam.DEVICE_CAMERAS["comma3x"] == (cam.C3_ROAD, cam.C3_WIDE)
    assert cam.DEVICE_CAMERAS["comma4"] == (cam.C4_ROAD, cam.C4_WIDE)
    K = cam.C3_ROAD.K
    assert K.dtype == np.float64 and K.shape == (3, 3)
    np.testing.assert_array_equal(K, [[2648.0, 0, 964.0], [0, 2648.0, 604.0], [0, 0, 1]])


def test_camera_model_is_frozen_and_validated():
    with pytest.raises(AttributeError):
        cam.C3_ROAD.focal_px = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="focal"):
        cam.CameraModel("bad", 10, 10, 0.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="size"):
        cam.CameraModel("bad", 0, 10, 1.0, 5.0, 5.0)


def test_intrinsics_at_half_width_are_the_y_subgrids():
    """The luma sub-grid Y[0::2, 0::2] of a model frame: a point at pixel (u, v) of the frame is at (u / 2, v / 2)."""
    model = cam.MODEL_CAMERAS["img"]
    focal, cx, cy = model.intrinsics_at(model.width_px // 2)
    assert (focal, cx, cy) == (455.0, 128.0, 23.8)
    points = np.array([[0.5, 1.3, 12.0], [-2.0, 1.0, 30.0]])  # view frame: x right, y down, z ahead
    full = points @ model.K.T
    full = full[:, :2] / full[:, 2:]
    half = np.stack([cx + focal * points[:, 0] / points[:, 2], cy + focal * points[:, 1] / points[:, 2]], axis=1)
    np.testing.assert_allclose(half, full / 2, rtol=0, atol=1e-12)
    assert model.intrinsics_at(model.width_px) == (model.focal_px, model.cx_px, model.cy_px)


# ---------------------------------------------------------------------------------------------- rotations


def test_view_from_device_maps_frd_axes_to_view_axes():
    np.testing.assert_array_equal(cam.VIEW_FROM_DEVICE @ [1, 0, 0], [0, 0, 1])  # forward -> optical axis
    np.testing.assert_array_equal(cam.VIEW_FROM_DEVICE @ [0, 1, 0], [1, 0, 0])  # right -> image right
    np.testing.assert_array_equal(cam.VIEW_FROM_DEVICE @ [0, 0, 1], [0, 1, 0])  # down -> image down


def test_euler_axes_and_signs_in_frd():
    x, y, z = np.eye(3)
    np.testing.assert_allclose(cam.rot_from_euler([0, 0, np.pi / 2]) @ x, y, atol=1e-12)  # +yaw turns right
    np.testing.assert_allclose(cam.rot_from_euler([0, np.pi / 2, 0]) @ x, -z, atol=1e-12)  # +pitch: nose up
    np.testing.assert_allclose(cam.rot_from_euler([np.pi / 2, 0, 0]) @ y, z, atol=1e-12)  # +roll: right side down
    assert (cam.rot_z(0.1) @ x)[1] > 0
    rpy = np.array([0.3, -0.2, 0.7])
    expected = cam.rot_z(rpy[2]) @ cam.rot_y(rpy[1]) @ cam.rot_x(rpy[0])
    np.testing.assert_allclose(cam.rot_from_euler(rpy), expected, atol=1e-15)


def test_euler_round_trip_single_and_batched():
    rng = np.random.default_rng(0)
    rpy = np.stack(
        [rng.uniform(-np.pi + 1e-3, np.pi - 1e-3, 200), rng.uniform(-1.5, 1.5, 200), rng.uniform(-3.1, 3.1, 200)],
        axis=1,
    )  # (200, 3), away from gimbal lock
    R = cam.rot_from_euler(rpy)  # (200, 3, 3)
    assert R.shape == (200, 3, 3)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(cam.euler_from_rot(R), rpy, atol=1e-9)
    np.testing.assert_allclose(cam.euler_from_rot(cam.rot_from_euler(CALIB_RPY_RAD)), CALIB_RPY_RAD, atol=1e-12)
    assert cam.euler_from_rot(R[0]).shape == (3,)


def test_rotation_functions_reject_bad_shapes():
    with pytest.raises(ValueError, match="rpy_rad"):
        cam.rot_from_euler([0.0, 0.1])
    with pytest.raises(ValueError, match="rotation"):
        cam.euler_from_rot(np.eye(4))


# ---------------------------------------------------------------------------------------------- projection


@pytest.mark.parametrize("camera", [cam.C3_ROAD, cam.MEDMODEL, cam.SBIGMODEL], ids=lambda c: c.name)
def test_road_point_projects_to_the_hand_computed_pixel(camera):
    pixels_px, in_front = cam.project_points_device(ROAD_POINT_M[None], camera)
    assert pixels_px.shape == (1, 2) and in_front.tolist() == [True]
    np.testing.assert_allclose(pixels_px[0], _hand_projection(ROAD_POINT_M, camera), atol=1e-9)
    # the point is left of centre and below the horizon, inside the image
    assert 0 < pixels_px[0, 0] < camera.cx_px and camera.cy_px < pixels_px[0, 1] < camera.height_px


def test_points_behind_the_camera_are_flagged():
    pts = np.array([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pixels_px, in_front = cam.project_points_device(pts, cam.C3_ROAD)
    assert in_front.tolist() == [True, False, False]
    assert np.isnan(pixels_px[1:]).all()
    np.testing.assert_allclose(pixels_px[0], [cam.C3_ROAD.cx_px, cam.C3_ROAD.cy_px])


def test_calibration_rotates_calibrated_points_into_the_device_frame():
    device_from_calib = cam.rot_from_euler(CALIB_RPY_RAD)
    pts_calib = np.array([[20.0, -1.5, 1.22], [8.0, 3.0, 0.4]])
    with_rpy, _ = cam.project_points_device(pts_calib, cam.C3_ROAD, CALIB_RPY_RAD)
    pre_rotated, _ = cam.project_points_device(pts_calib @ device_from_calib.T, cam.C3_ROAD)
    np.testing.assert_allclose(with_rpy, pre_rotated, atol=1e-9)


def test_pixel_to_ray_inverts_projection():
    pts = np.array([[20.0, -1.5, 1.22], [5.0, 2.0, -0.5], [60.0, 0.3, 1.0]])
    pixels_px, _ = cam.project_points_device(pts, cam.C4_ROAD, CALIB_RPY_RAD)
    rays = cam.pixel_to_ray(pixels_px, cam.C4_ROAD, CALIB_RPY_RAD)  # (3, 3) unit rays, calibrated frame
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0)
    np.testing.assert_allclose(rays, pts / np.linalg.norm(pts, axis=1, keepdims=True), atol=1e-12)


def test_projection_rejects_bad_inputs():
    with pytest.raises(ValueError, match="points_device_m"):
        cam.project_points_device(np.zeros((4, 2)), cam.C3_ROAD)
    with pytest.raises(ValueError, match="device_from_calib_rpy"):
        cam.project_points_device(np.zeros((4, 3)), cam.C3_ROAD, [0.0, 0.0])
    with pytest.raises(ValueError, match="CameraModel"):
        cam.project_points_device(np.zeros((4, 3)), cam.C3_ROAD.K)


# ---------------------------------------------------------------------------------------------- warp


@pytest.mark.parametrize(("camera", "model"), WARP_PAIRS, ids=lambda c: c.name)
def test_warp_matrix_maps_model_pixel_to_camera_pixel(camera, model):
    model_px = cam.project_points_device(ROAD_POINT_M, model)[0][0]  # model frame is aligned with calib
    camera_px = cam.project_points_device(ROAD_POINT_M, camera, CALIB_RPY_RAD)[0][0]
    uncalibrated_px = cam.project_points_device(ROAD_POINT_M, camera)[0][0]
    assert np.linalg.norm(camera_px - uncalibrated_px) > 5.0  # the calibration really moves the point
    M = cam.warp_matrix(CALIB_RPY_RAD, camera, model)
    uvw = M @ np.append(model_px, 1.0)
    np.testing.assert_allclose(uvw[:2] / uvw[2], camera_px, atol=1e-6)


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
@pytest.mark.parametrize(("camera", "model"), WARP_PAIRS[:2], ids=lambda c: c.name)
def test_warp_image_moves_a_dot_to_its_model_pixel(camera, model, method):
    model_px = cam.project_points_device(ROAD_POINT_M, model)[0][0]
    camera_px = cam.project_points_device(ROAD_POINT_M, camera, CALIB_RPY_RAD)[0][0]
    sigma_px = 2.5 * camera.focal_px / model.focal_px  # ~2.5 model pixels wide
    image = _blob_image(camera, camera_px, sigma_px)  # (H, W) uint8
    warped = cam.warp_image(image, cam.warp_matrix(CALIB_RPY_RAD, camera, model), method=method)
    assert warped.shape == (256, 512) and warped.dtype == np.uint8
    assert warped.max() >= 200
    assert np.linalg.norm(_centroid_px(warped) - model_px) < 1.0


def test_warp_with_model_intrinsics_and_zero_rpy_is_identity():
    same = cam.CameraModel("same", 640, 320, cam.MEDMODEL.focal_px, cam.MEDMODEL.cx_px, cam.MEDMODEL.cy_px)
    M = cam.warp_matrix(np.zeros(3), same, cam.MEDMODEL)
    np.testing.assert_allclose(M, np.eye(3), atol=1e-9)
    image = np.random.default_rng(1).integers(0, 256, (320, 640, 3), dtype=np.uint8)
    for method in ("nearest", "bilinear"):
        out = cam.warp_image(image, M, method=method)
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, image[:256, :512])


def test_warp_image_translation_fill_and_rounding():
    image = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8)  # (H=6, W=8)
    shift = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]])  # output (u, v) <- input (u+3, v+2)
    out = cam.warp_image(image, shift, out_width_px=8, out_height_px=6, fill=7)
    np.testing.assert_array_equal(out[:4, :5], image[2:, 3:])
    assert (out[4:, :] == 7).all() and (out[:, 5:] == 7).all()
    # -I is the identity on the image plane but puts every ray behind the camera: nothing is visible
    for method in ("nearest", "bilinear"):
        assert (cam.warp_image(image, -np.eye(3), 8, 6, method=method, fill=9) == 9).all()
    # nearest rounds: +0.4 px stays, +0.6 px moves to the next pixel
    for dx, expect_shift in ((0.4, 0), (0.6, 1)):
        M = np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        out = cam.warp_image(image, M, out_width_px=6, out_height_px=6)
        np.testing.assert_array_equal(out, image[:, expect_shift : expect_shift + 6])
    # bilinear at half a pixel averages the two neighbours (float image keeps its dtype)
    fimage = image.astype(np.float32)
    half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    out = cam.warp_image(fimage, half, out_width_px=7, out_height_px=6, method="bilinear")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 0.5 * (fimage[:, :7] + fimage[:, 1:8]))


def test_warp_image_rejects_bad_inputs():
    image = np.zeros((10, 10), dtype=np.uint8)
    with pytest.raises(ValueError, match="image"):
        cam.warp_image(np.zeros((2, 10, 10, 3), dtype=np.uint8), np.eye(3))
    with pytest.raises(ValueError, match="warp matrix"):
        cam.warp_image(image, np.eye(2))
    with pytest.raises(ValueError, match="method"):
        cam.warp_image(image, np.eye(3), method="cubic")


def test_bilinear_warp_with_precomputed_taps_matches_warp_image() -> None:
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (cam.C3_WIDE.height_px, cam.C3_WIDE.width_px, 3), dtype=np.uint8)
    M = cam.warp_matrix([0.01, -0.02, 0.03], cam.C3_WIDE, cam.SBIGMODEL)  # parts of the frame fall outside
    fast = cam.BilinearWarp(M, cam.C3_WIDE.width_px, cam.C3_WIDE.height_px)
    reference = cam.warp_image(img, M, method="bilinear")
    out = fast(img)
    assert out.shape == reference.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - reference).max() <= 1 and (out != reference).mean() < 1e-3
    with pytest.raises(ContractError, match="expects uint8"):
        fast(img[:100])


def test_warp_image_clamps_to_the_edge_like_modelds_warp():
    """Default fill: samples beyond the image repeat its nearest edge pixel (both methods and BilinearWarp)."""
    image = np.arange(6 * 8, dtype=np.uint8).reshape(6, 8, 1)
    shift = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 2.0], [0.0, 0.0, 1.0]])  # output (u, v) <- input (u+3, v+2)
    expected = image[np.clip(np.arange(6) + 2, 0, 5)][:, np.clip(np.arange(8) + 3, 0, 7)]
    for method in ("nearest", "bilinear"):
        np.testing.assert_array_equal(cam.warp_image(image, shift, 8, 6, method=method), expected)
    np.testing.assert_array_equal(cam.BilinearWarp(shift, 8, 6, 8, 6)(image), expected)
    assert (cam.BilinearWarp(shift, 8, 6, 8, 6, fill=0)(image)[4:] == 0).all()
    with pytest.raises(ContractError, match="fill"):
        cam.BilinearWarp(shift, 8, 6, fill=3)
