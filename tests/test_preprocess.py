"""The one preprocessing: channel order, mean, scale, transpose, deploy geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tests.conftest import MODELS as SHARED_MODELS
from tests.conftest import shared_or_skip
from zoo.preprocess import Preprocess, read_mean_pixel
from zoo.registry import load_registry

GOOGLENET = Preprocess("BGR", (104.0, 117.0, 123.0), 1.0, (224, 224), 256)
MTCNN = Preprocess("RGB", (127.5, 127.5, 127.5), 0.0078125, (48, 48), 0, transpose=True)


def test_to_net_is_bgr_minus_mean() -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # R, G, B
    x = GOOGLENET.to_net(rgb)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0, 0], [50 - 104, 100 - 117, 200 - 123])


def test_mtcnn_space_is_rgb_scaled_and_transposed() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 5] = (255, 0, 127)
    x = MTCNN.to_net(rgb)
    assert x.shape == (3, 6, 4)  # x and y swapped
    np.testing.assert_allclose(x[:, 5, 1], [(255 - 127.5) / 128, -127.5 / 128, -0.5 / 128])


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (5, 7, 3), elements=st.floats(0, 255, width=32)),
       st.sampled_from([GOOGLENET, MTCNN, Preprocess("BGR", (127.0,) * 3, 1 / 128, (8, 8), 0)]))
def test_from_net_inverts_to_net(rgb: np.ndarray, p: Preprocess) -> None:
    np.testing.assert_allclose(p.from_net(p.to_net(rgb)), rgb, atol=1e-3)


def test_bounds_are_where_0_and_255_land() -> None:
    lo, hi = GOOGLENET.bounds()
    assert lo.shape == hi.shape == (3, 1, 1)
    np.testing.assert_array_equal(lo.ravel(), [-104, -117, -123])
    np.testing.assert_array_equal(hi.ravel(), [151, 138, 132])
    white = GOOGLENET.to_net(np.full((1, 1, 3), 255.0))
    np.testing.assert_array_equal(white, hi)
    lo, hi = MTCNN.bounds()
    np.testing.assert_allclose([lo.min(), hi.max()], [-127.5 / 128, 127.5 / 128])


def test_prepare_resizes_short_side_and_center_crops() -> None:
    img = np.zeros((300, 600, 3), np.uint8)
    img[:, 300:] = 255  # right half white: the center crop straddles the edge
    x = GOOGLENET.prepare(Image.fromarray(img))
    assert x.shape == (3, 224, 224)
    back = GOOGLENET.from_net(x)
    assert back[:, :100].max() < 1 and back[:, 124:].min() > 254
    assert MTCNN.prepare(Image.fromarray(img)).shape == (3, 48, 48)
    assert GOOGLENET.prepare(Image.fromarray(np.zeros((50, 20, 3), np.uint8))).shape == (3, 224, 224)


def test_from_card_reads_the_mean_file() -> None:
    card = load_registry(Path("/nonexistent")).get("gender_net")
    p = Preprocess.from_card(card, shared_or_skip(SHARED_MODELS / "gender_net" / "mean.binaryproto"))
    np.testing.assert_allclose(p.mean, (78.4263377603, 87.7689143744, 114.895847746), atol=1e-4)
    assert p.input_size == (227, 227) and p.channel_order == "BGR"
    np.testing.assert_allclose(read_mean_pixel(shared_or_skip(SHARED_MODELS / "googlenet_places365" / "places365CNN_mean.binaryproto")),
                               (104.051, 112.5145, 116.676), atol=1e-3)
    with pytest.raises(ValueError, match="no mean"):
        Preprocess.from_card(card)
    assert Preprocess.from_card(load_registry(Path("/nonexistent")).get("mtcnn_det3")) == MTCNN


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Preprocess("RBG")
    with pytest.raises(ValueError):
        GOOGLENET.to_net(np.zeros((4, 4)))
