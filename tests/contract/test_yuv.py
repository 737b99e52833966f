"""Tests of contract.yuv: BT.601 full-range colour, NV12 layout and the 6-channel frame packing."""

from __future__ import annotations

import numpy as np
import pytest

from sunnypilot_training.contract import yuv

H, W = 256, 512  # model frame


def _reference_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float64 reference of BT.601 full range, written out per channel, chroma = mean of each 2x2 block."""
    r, g, b = (rgb[..., c].astype(np.float64) for c in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b

    def mean2x2(p):
        return (p[..., 0::2, 0::2] + p[..., 1::2, 0::2] + p[..., 0::2, 1::2] + p[..., 1::2, 1::2]) / 4

    return y, mean2x2(u), mean2x2(v)


def _block_chroma_image(height: int, width: int) -> np.ndarray:
    """RGB uint8 image whose chroma is constant on every 2x2 block: smooth gradients + a checkerboard in Y."""
    rows, cols = np.indices((height, width))
    y = 60 + 100 * cols / width + 20 * rows / height + 15 * ((rows + cols) % 2)  # (H, W), within 60..195
    br, bc = np.indices((height // 2, width // 2))
    u = 128 + 30 * np.sin(bc / 17.0) * np.cos(br / 11.0)  # (H/2, W/2)
    v = 128 + 25 * np.cos(bc / 23.0 + br / 13.0)
    uf = np.repeat(np.repeat(u, 2, 0), 2, 1) - 128  # (H, W)
    vf = np.repeat(np.repeat(v, 2, 0), 2, 1) - 128
    rgb = np.stack([y + 1.402 * vf, y - 0.344136 * uf - 0.714136 * vf, y + 1.772 * uf], axis=-1)
    assert rgb.min() >= 0 and rgb.max() <= 255  # no clipping, so the pattern is exactly representable
    return np.floor(rgb + 0.5).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- colour


@pytest.mark.parametrize(
    ("colour", "expected_yuv"),
    [
        ((255, 255, 255), (255, 128, 128)),
        ((0, 0, 0), (0, 128, 128)),
        ((255, 0, 0), (76, 85, 255)),  # Y = 0.299 * 255 = 76.2; V = 128 + 127.5, clipped
        ((0, 0, 255), (29, 255, 107)),
        ((128, 128, 128), (128, 128, 128)),
    ],
)
def test_known_colours(colour, expected_yuv):
    rgb = np.broadcast_to(np.array(colour, dtype=np.uint8), (4, 6, 3))
    y, u, v = yuv.rgb_to_yuv420(rgb)
    assert y.shape == (4, 6) and u.shape == v.shape == (2, 3)
    for plane, want in zip((y, u, v), expected_yuv, strict=True):
        assert plane.dtype == np.uint8
        assert np.abs(plane.astype(int) - want).max() <= 1


def test_conversion_matches_float64_reference_on_random_frames():
    rgb = np.random.default_rng(0).integers(0, 256, (2, H, W, 3), dtype=np.uint8)  # batch of 2
    y, u, v = yuv.rgb_to_yuv420(rgb)
    assert y.shape == (2, H, W) and u.shape == v.shape == (2, H // 2, W // 2)
    for got, ref in zip((y, u, v), _reference_yuv(rgb), strict=True):
        want = np.clip(np.floor(ref + 0.5), 0, 255)
        assert np.abs(got.astype(int) - want).max() <= 1
        assert np.mean(got == want) > 0.99  # float32 only flips values that sit on a rounding edge


def test_nv12_buffer_layout():
    rgb = _block_chroma_image(8, 12)
    nv12 = yuv.rgb_to_nv12(rgb)
    assert nv12.shape == (12, 12) and nv12.dtype == np.uint8
    y, u, v = yuv.rgb_to_yuv420(rgb)
    np.testing.assert_array_equal(nv12[:8], y)
    np.testing.assert_array_equal(nv12[8:, 0::2], u)  # U, V interleaved on the chroma rows
    np.testing.assert_array_equal(nv12[8:, 1::2], v)
    for a, b in zip(yuv.nv12_planes(nv12), (y, u, v), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(yuv.planes_to_nv12(y, u, v), nv12)


def test_pattern_survives_rgb_nv12_6ch_round_trip():
    rgb = _block_chroma_image(H, W)
    frame = yuv.rgb_to_6ch(rgb)
    assert frame.shape == (6, 128, 256) and frame.dtype == np.uint8
    back = yuv.six_channel_to_rgb(frame)
    assert back.shape == (H, W, 3) and back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb).max() <= 2
    assert abs((back.astype(float) - rgb).mean()) < 0.25  # rounded, not truncated: no systematic bias
    assert np.abs(yuv.nv12_to_rgb(yuv.rgb_to_nv12(rgb)).astype(int) - rgb).max() <= 2
    # the checkerboard lives in luma: neighbouring pixels differ by ~15 levels after the round trip
    y = yuv.six_channel_to_y(frame).astype(int)
    assert np.abs(np.diff(y, axis=1)).mean() > 10


# ---------------------------------------------------------------------------------------------- packing


def test_channel_order_follows_the_y_subgrid_parity():
    rows, cols = np.indices((H, W))
    y = (10 * (rows % 2) + (cols % 2)).astype(np.uint8)  # 0: (even, even), 10: (odd, even), 1: (even, odd), 11
    u = np.full((H // 2, W // 2), 100, dtype=np.uint8)
    v = np.full((H // 2, W // 2), 200, dtype=np.uint8)
    frame = yuv.pack_6ch(y, u, v)
    assert frame.shape == (6, 128, 256)
    for ch, value in enumerate([0, 10, 1, 11, 100, 200]):  # Y[0::2,0::2], Y[1::2,0::2], Y[0::2,1::2], Y[1::2,1::2]
        assert (frame[ch] == value).all(), f"channel {ch}"


def test_pack_unpack_round_trip_is_exact_with_batch():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 256, (3, H, W), dtype=np.uint8)
    u = rng.integers(0, 256, (3, H // 2, W // 2), dtype=np.uint8)
    v = rng.integers(0, 256, (3, H // 2, W // 2), dtype=np.uint8)
    frames = yuv.pack_6ch(y, u, v)
    assert frames.shape == (3, 6, 128, 256)
    for got, want in zip(yuv.unpack_6ch(frames), (y, u, v), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(yuv.six_channel_to_y(frames), y)
    np.testing.assert_array_equal(yuv.pack_6ch(y[1], u[1], v[1]), frames[1])


def test_batched_rgb_to_6ch_equals_per_frame():
    rgb = np.random.default_rng(3).integers(0, 256, (3, H, W, 3), dtype=np.uint8)
    frames = yuv.rgb_to_6ch(rgb)
    assert frames.shape == (3, 6, 128, 256)
    for t in range(3):
        np.testing.assert_array_equal(frames[t], yuv.rgb_to_6ch(rgb[t]))


def test_stack_frame_pair_puts_the_older_frame_first():
    prev = np.full((6, 128, 256), 1, dtype=np.uint8)
    cur = np.full((6, 128, 256), 2, dtype=np.uint8)
    pair = yuv.stack_frame_pair(prev, cur)
    assert pair.shape == (yuv.MODEL_INPUT_CHANNELS, 128, 256) == (12, 128, 256)
    assert (pair[: yuv.FRAME_CHANNELS] == 1).all() and (pair[yuv.FRAME_CHANNELS :] == 2).all()
    batched = yuv.stack_frame_pair(np.stack([prev, cur]), np.stack([cur, cur]))
    assert batched.shape == (2, 12, 128, 256) and (batched[0, :6] == 1).all()
    assert yuv.FRAME_PAIR_OFFSET == 4


def test_bad_shapes_and_dtypes_raise_value_error():
    with pytest.raises(ValueError, match="even"):
        yuv.rgb_to_6ch(np.zeros((255, 512, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        yuv.rgb_to_6ch(np.zeros((256, 512, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        yuv.rgb_to_6ch(np.zeros((256, 512, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="expected"):
        yuv.pack_6ch(np.zeros((256, 512), np.uint8), np.zeros((128, 255), np.uint8), np.zeros((128, 256), np.uint8))
    with pytest.raises(ValueError, match="6"):
        yuv.unpack_6ch(np.zeros((5, 128, 256), dtype=np.uint8))
    with pytest.raises(ValueError, match="equal shapes"):
        yuv.stack_frame_pair(np.zeros((6, 128, 256), np.uint8), np.zeros((6, 64, 128), np.uint8))
    with pytest.raises(ValueError, match="nv12"):
        yuv.nv12_planes(np.zeros((10, 8), dtype=np.uint8))
