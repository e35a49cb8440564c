"""Flow, warping, occlusion, frame selection and chunk bounds: pure functions against known motion."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from skimage import data
from zoo.dream import distributed, flow, video


def _photo(side: int = 160) -> np.ndarray:
    return cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)


def test_warp_by_a_whole_pixel_shift_is_numpy_roll():
    img = _photo().astype(np.float32)
    f = np.zeros((*img.shape[:2], 2), np.float32)
    f[..., 0], f[..., 1] = 3.0, -2.0  # each pixel takes the value 3 right, 2 up
    out = flow.warp(img, f)
    ref = np.roll(img, (2, -3), axis=(0, 1))
    np.testing.assert_array_equal(out[4:-4, 4:-4], ref[4:-4, 4:-4])


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_a_known_shift(method):
    big = _photo(200)
    a, b = big[20:180, 20:180], big[22:182, 25:185]  # b(p) = a(p + (5, 2)): a's content moved by (-5, -2)
    back = flow.flow(b, a, method)  # from b to a: b(p) matches a(p + back)
    mid = back[30:-30, 30:-30].reshape(-1, 2)
    assert np.abs(np.median(mid, axis=0) - [5.0, 2.0]).max() < 0.3
    warped = flow.warp(a.astype(np.float32), back)
    assert np.abs(warped - b)[20:-20, 20:-20].mean() < 0.25 * np.abs(a.astype(np.float32) - b)[20:-20, 20:-20].mean()


def test_occlusion_check_marks_pixels_that_leave_the_frame_and_disagreeing_flow():
    h, w = 64, 64
    back = np.zeros((h, w, 2), np.float32)
    back[..., 0] = 6.0  # everything came from 6 px to the right
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = -6.0
    occ = flow.occluded(back, fwd)
    assert occ[:, w - 6:].all()  # their match lies outside the previous frame
    assert not occ[:, : w - 7].any()
    fwd[20:30, 20:40, 0] = 4.0  # an object there moves the other way: the loop does not close
    occ = flow.occluded(back, fwd)
    assert occ[20:30, 15:33].all() and not occ[40:, : w - 7].any()


def test_carry_adds_warped_detail_and_leaves_occluded_pixels_plain():
    src = np.full((32, 32, 3), 100.0, np.float32)
    prev_dream = src.copy()
    prev_dream[10:14, 10:14] += 40.0
    zero = np.zeros((32, 32, 2), np.float32)
    out = flow.carry(src, src, prev_dream, zero, zero, 0.5)
    assert out[11, 11, 0] == 120.0 and out[0, 0, 0] == 100.0
    back = zero.copy()
    back[..., 0] = 40.0  # all matches outside the frame: all occluded
    fwd = zero.copy()
    fwd[..., 0] = -40.0
    np.testing.assert_array_equal(flow.carry(src, src, prev_dream, back, fwd, 0.9), src)


def test_frame_selection_start_end_and_fps_subsampling():
    assert video.select_frames(10, Fraction(24), 2, 6) == ([2, 3, 4, 5], Fraction(24))
    kept, rate = video.select_frames(24, Fraction(24), fps=12)
    assert kept == list(range(0, 24, 2)) and rate == 12
    kept, rate = video.select_frames(30, Fraction(30000, 1001), fps=10)
    assert rate == 10 and len(kept) == 10 and kept[:4] == [0, 3, 6, 9]
    assert video.select_frames(5, Fraction(24), fps=60)[0] == [0, 1, 2, 3, 4]  # no upsampling


def test_chunk_bounds_cover_the_clip_in_order():
    assert distributed.chunk_bounds(12, 2) == [(0, 6), (6, 12)]
    assert distributed.chunk_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert distributed.chunk_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]


def test_tiles_go_one_per_rank_per_round_and_all_in_one_process(monkeypatch):
    tiles = list("abcde")
    assert distributed.tile_rounds(tiles) == [[0], [1], [2], [3], [4]]
    assert not distributed.sharing(tiles) and distributed.mine([3], tiles) == 3
    monkeypatch.setattr(distributed, "_STATE", distributed.Ranks(rank=1, world=2, share_tiles=True))
    assert distributed.sharing(tiles) and not distributed.sharing(tiles[:1])
    assert distributed.tile_rounds(tiles) == [[0, 1], [2, 3], [4]]
    assert distributed.mine([2, 3], tiles) == 3 and distributed.mine([4], tiles) is None
    assert distributed.tile_rounds(tiles[:1]) == [[0]] and distributed.mine([0], tiles[:1]) == 0
