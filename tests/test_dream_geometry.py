"""Octave sizes, tile layouts, blend weights, jitter and the ascent step, with exact numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zoo.dream import geometry
from zoo.dream.render import ascent_step, plan_tiles, zoom


def test_octave_sizes_follow_the_notebook_rounding():
    # the notebook zooms each octave from the previous one by 1/1.4 and scipy rounds the size
    assert geometry.octave_sizes(100, 120, 4, 1.4) == [(36, 44), (51, 61), (71, 86), (100, 120)]
    assert geometry.octave_sizes(224, 224, 1, 1.4) == [(224, 224)]
    assert geometry.octave_sizes(512, 512, 4, 1.4) == [(186, 186), (261, 261), (366, 366), (512, 512)]
    assert geometry.octave_sizes(10, 10, 3, 2.0) == [(2, 2), (5, 5), (10, 10)]


def test_octave_sizes_match_scipy_zoom_chain():
    from scipy import ndimage

    img = np.zeros((3, 333, 517), np.float32)
    chain = [img.shape[1:]]
    for _ in range(4):
        img = ndimage.zoom(img, (1, 1 / 1.4, 1 / 1.4), order=1)
        chain.append(img.shape[1:])
    assert geometry.octave_sizes(333, 517, 5, 1.4) == chain[::-1]


def test_octave_sizes_reject_nonsense():
    with pytest.raises(ValueError):
        geometry.octave_sizes(10, 10, 0, 1.4)
    with pytest.raises(ValueError):
        geometry.octave_sizes(10, 10, 2, 0.0)


def test_scaled_size_keeps_aspect_or_sets_both():
    assert geometry.scaled_size(300, 400, "200") == (150, 200)
    assert geometry.scaled_size(300, 400, "64x48") == (48, 64)
    assert geometry.scaled_size(300, 400, "5400X5400") == (5400, 5400)
    for bad in ("abc", "0", "10x-2", "x"):
        with pytest.raises(ValueError):
            geometry.scaled_size(300, 400, bad)


def test_cut_points_and_spans_exact():
    assert geometry.cut_points(10, 4) == [4, 8]
    assert geometry.cut_points(10, 4, offset=2) == [2, 6]
    assert geometry.cut_points(10, 4, offset=2, min_core=3) == [6]  # the 2-pixel first core merges
    assert geometry.cut_points(10, 4, min_core=3) == [4]  # the 2-pixel last core merges
    assert geometry.cut_points(4, 4) == []
    spans = geometry.tile_spans(10, [4, 8], margin=2)
    assert spans == [geometry.Span(0, 6), geometry.Span(2, 10), geometry.Span(6, 10)]


def test_blend_weights_exact():
    w = geometry.blend_weights(10, [4, 8], margin=2)
    np.testing.assert_array_equal(w[0], [1, 1, 1, 0.75, 0.25, 0])
    np.testing.assert_array_equal(w[1], [0, 0.25, 0.75, 1, 1, 0.75, 0.25, 0])
    np.testing.assert_array_equal(w[2], [0, 0.25, 0.75, 1])


def test_tile_grid_2d_is_outer_product_and_sums_to_one():
    tiles = geometry.tile_grid(10, 7, tile=8, margin=2)
    assert [(t.rows.start, t.rows.stop, t.cols.start, t.cols.stop) for t in tiles] == [
        (0, 6, 0, 6), (0, 6, 2, 7), (2, 10, 0, 6), (2, 10, 2, 7), (6, 10, 0, 6), (6, 10, 2, 7)]
    total = np.zeros((10, 7))
    for t in tiles:
        total[t.rows.start:t.rows.stop, t.cols.start:t.cols.stop] += t.weight()
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    np.testing.assert_array_equal(tiles[0].weight()[3], [0.75, 0.75, 0.75, 0.5625, 0.1875, 0])


@settings(max_examples=150, deadline=None)
@given(
    length=st.integers(1, 300),
    other=st.integers(1, 300),
    tile=st.integers(8, 128),
    margin=st.integers(0, 16),
    offset=st.integers(0, 400),
)
def test_tile_grid_covers_every_pixel_with_weights_summing_to_one(length, other, tile, margin, offset):
    if tile - 2 * margin < max(1, margin):
        with pytest.raises(ValueError):
            geometry.tile_grid(length, other, tile, margin, (offset, offset))
        return
    tiles = geometry.tile_grid(length, other, tile, margin, (offset, offset // 3))
    total = np.zeros((length, other))
    covered = np.zeros((length, other), dtype=int)
    for t in tiles:
        assert 0 <= t.rows.start < t.rows.stop <= length and 0 <= t.cols.start < t.cols.stop <= other
        w = t.weight()
        assert w.shape == (t.rows.length, t.cols.length) and (w >= 0).all()
        total[t.rows.start:t.rows.stop, t.cols.start:t.cols.stop] += w
        covered[t.rows.start:t.rows.stop, t.cols.start:t.cols.stop] += 1
        # no weight within margin/2 of an inner tile edge: the tile sees context there
        half = margin // 2
        if half and t.rows.start > 0:
            assert (t.row_weight[:half] == 0).all()
        if half and t.cols.stop < other:
            assert (t.col_weight[-half:] == 0).all()
    assert (covered >= 1).all()
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_plan_tiles_aligns_and_single_tile_when_image_fits():
    plan = plan_tiles(500, 32)
    assert (plan.tile, plan.margin, plan.align) == (480, 32, 32)
    tiles = plan.tiles(300, 480)
    assert len(tiles) == 1 and tiles[0].weight().min() == 1.0
    tiles = plan.tiles(1000, 1000, offset=(64, 0))
    assert all(t.rows.start % 32 == 0 and t.cols.start % 32 == 0 for t in tiles)


def test_jitter_is_seeded_and_in_range():
    a = geometry.jitter_shift(np.random.default_rng(5), 32)
    b = geometry.jitter_shift(np.random.default_rng(5), 32)
    assert a == b
    rng = np.random.default_rng(0)
    draws = np.array([geometry.jitter_shift(rng, 3) for _ in range(400)])
    assert draws.min() == -3 and draws.max() == 3
    assert geometry.jitter_shift(rng, 0) == (0, 0)


def test_ascent_step_normalises_by_mean_abs_gradient_and_clips():
    x = torch.zeros(1, 3, 1, 2)
    grad = torch.tensor([[1.0, -3.0]]).expand(1, 3, 1, 2).clone()  # mean |g| = 2
    ascent_step(x, grad, 1.0, None, None)
    assert x[0, :, 0].tolist() == [[0.5, -1.5]] * 3
    lo = torch.tensor([-1.0, -2.0, -0.25]).reshape(1, 3, 1, 1)
    hi = torch.tensor([0.25, 2.0, 1.0]).reshape(1, 3, 1, 1)
    ascent_step(x, grad, 1.0, lo, hi)  # now [1, -3] before clipping
    assert x[0, :, 0].tolist() == [[0.25, -1.0], [1.0, -2.0], [1.0, -0.25]]
    y = torch.ones(1, 3, 1, 2)
    ascent_step(y, torch.zeros_like(y), 1.5, None, None)  # a flat gradient leaves the image alone
    assert (y == 1).all()


def test_zoom_maps_corners_to_corners_like_scipy_order_1():
    x = torch.tensor([[0.0, 3.0]]).reshape(1, 1, 1, 2).expand(1, 1, 2, 2)
    out = zoom(x, (2, 4))
    assert out[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
    from scipy import ndimage

    img = torch.arange(30.0).reshape(1, 1, 5, 6)
    ref = ndimage.zoom(img[0, 0].numpy(), (7 / 5, 9 / 6), order=1)
    np.testing.assert_allclose(zoom(img, (7, 9))[0, 0].numpy(), ref, atol=1e-4)
