"""Each augmentation on small tensors with exact expected values (BGR, 0-255)."""

import math

import pytest
import torch
from zoo.train import augment as A

from zoo.errors import UserError


def px(b, g, r, h=1, w=1):
    """A constant BGR image."""
    return torch.tensor([b, g, r], dtype=torch.float64).view(3, 1, 1).expand(3, h, w).clone()


def test_brightness_scales_every_value():
    img = torch.arange(12, dtype=torch.float64).view(3, 2, 2)
    assert torch.equal(A.Brightness.apply(img, 1.5), img * 1.5)


def test_contrast_blends_with_mean_luma():
    img = torch.zeros(3, 1, 2, dtype=torch.float64)
    img[:, 0, 1] = 100.0  # one black, one gray-100 pixel: mean luma 50
    out = A.Contrast.apply(img, 0.5)
    assert torch.allclose(out[:, 0, 0], torch.full((3,), 25.0, dtype=torch.float64))
    assert torch.allclose(out[:, 0, 1], torch.full((3,), 75.0, dtype=torch.float64))


def test_saturation_zero_is_gray_and_two_doubles_chroma():
    img = px(50.0, 100.0, 200.0)  # luma = 0.114*50 + 0.587*100 + 0.299*200 = 124.2
    assert torch.allclose(A.Saturation.apply(img, 0.0), px(124.2, 124.2, 124.2))
    assert torch.allclose(A.Saturation.apply(img, 2.0), px(2 * 50 - 124.2, 2 * 100 - 124.2, 2 * 200 - 124.2))


def test_hue_half_turn_reflects_through_luma_and_keeps_gray():
    img = px(50.0, 100.0, 200.0)
    # a half turn negates I and Q: p' = 2 * luma - p
    assert torch.allclose(A.Hue.apply(img, 0.5), px(198.4, 148.4, 48.4))
    assert torch.allclose(A.Hue.apply(img, 0.0), img)
    assert torch.allclose(A.Hue.apply(px(80.0, 80.0, 80.0), 0.3), px(80.0, 80.0, 80.0))
    # luma is kept for any angle
    assert A.gray(A.Hue.apply(img, 0.17)).item() == pytest.approx(124.2)


def test_lighting_adds_pca_offset_in_bgr_order():
    img = torch.zeros(3, 2, 2, dtype=torch.float64)
    out = A.Lighting.apply(img, (1.0, 0.0, 0.0))
    # 255 * 0.2175 * first eigenvector (R, G, B) = (-0.5675, -0.5808, -0.5836), stored B, G, R
    want = 255 * 0.2175 * torch.tensor([-0.5836, -0.5808, -0.5675], dtype=torch.float64)
    assert torch.allclose(out[:, 0, 0], want)
    out2 = A.Lighting.apply(img, (0.0, 2.0, 0.0))
    want2 = 255 * 0.0188 * 2 * torch.tensor([-0.6948, -0.0045, 0.7192], dtype=torch.float64)
    assert torch.allclose(out2[:, 1, 1], want2)


def test_mirror_flips_width():
    img = torch.arange(6, dtype=torch.float32).view(1, 2, 3).expand(3, 2, 3)
    assert torch.equal(A.Mirror.apply(img, True)[0], torch.tensor([[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]))
    assert torch.equal(A.Mirror.apply(img, False), img)


def test_crop_box_area_and_aspect():
    assert A.crop_box(10, 10, 0.64, 1.0) == (0, 0, 8, 8)
    assert A.crop_box(100, 100, 0.12, 4 / 3) == (0, 0, 30, 40)
    assert A.crop_box(10, 10, 1.0, 4 / 3) is None  # 11.5 wide does not fit in 10
    assert A.center_box(10, 8, (4, 4)) == (3, 2, 4, 4)


def test_center_crop_takes_the_middle():
    img = torch.arange(36, dtype=torch.float32).view(1, 6, 6).expand(3, 6, 6)
    out = A.CenterCrop((2, 2))(img)
    assert torch.equal(out[0], torch.tensor([[14.0, 15.0], [20.0, 21.0]]))


def test_random_resized_crop_respects_area_and_aspect_and_seed():
    crop = A.RandomResizedCrop((8, 8))
    for seed in range(50):
        top, left, h, w = crop.sample(64, 48, torch.Generator().manual_seed(seed))
        assert top >= 0 and top + h <= 64 and left >= 0 and left + w <= 48
        assert 0.08 * 64 * 48 * 0.8 <= h * w <= 64 * 48
        assert 3 / 4 * 0.85 <= w / h <= 4 / 3 * 1.15 or h == w
    img = torch.rand(3, 64, 48)
    a = crop(img, torch.Generator().manual_seed(3))
    b = crop(img, torch.Generator().manual_seed(3))
    assert a.shape == (3, 8, 8) and torch.equal(a, b)


def test_factor_sampling_stays_in_range_and_zero_strength_is_identity():
    gen = torch.Generator().manual_seed(0)
    fs = [A.Brightness(0.4).sample(gen) for _ in range(200)]
    assert 0.6 <= min(fs) < 0.7 and 1.3 < max(fs) <= 1.4
    img = torch.rand(3, 4, 4) * 255
    for aug in (A.Brightness(0.0), A.Contrast(0.0), A.Saturation(0.0), A.Hue(0.0), A.Lighting(0.0)):
        assert torch.allclose(aug(img, gen), img, atol=1e-4), aug


def test_build_composes_in_order_and_clips():
    t = A.build("crop=0.5,mirror,brightness=0.9", (4, 4))
    kinds = [type(s).__name__ for s in t.steps]
    assert kinds == ["RandomResizedCrop", "Mirror", "Brightness", "Clip"]
    out = t(torch.full((3, 10, 10), 250.0), torch.Generator().manual_seed(1))
    assert out.shape == (3, 4, 4) and out.max() <= 255.0 and out.min() >= 0.0
    assert [type(s).__name__ for s in A.build("none", (4, 4)).steps] == ["CenterCrop", "Clip"]
    assert A.parse_spec("hue=0.1,lighting") == {"hue": 0.1, "lighting": 0.1}


def test_bad_spec_is_a_user_error():
    with pytest.raises(UserError, match="blur"):
        A.parse_spec("crop,blur")
    with pytest.raises(UserError, match="number"):
        A.parse_spec("hue=lots")


def test_hue_matrix_rows_sum_to_one():
    # gray stays gray: each row of the BGR hue matrix sums to 1 for any angle
    m = A.hue_matrix_bgr(0.123)
    assert torch.allclose(m.sum(1), torch.ones(3, dtype=torch.float64))
    assert math.isclose(float(torch.linalg.det(m)), 1.0, rel_tol=1e-9)


def test_folded_colour_pipeline_equals_the_steps_one_by_one():
    """Compose folds runs of photometric steps into one 3x3 matrix + offset: same draws, same picture."""
    from zoo.train.augment import build

    t = build("crop,mirror,brightness=0.4,contrast=0.4,saturation=0.4,hue=0.1,lighting=0.1", (24, 32))
    img = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(1)) * 255
    for seed in range(4):
        fused = t(img, torch.Generator().manual_seed(seed))
        gen, x = torch.Generator().manual_seed(seed), img
        for step in t.steps:
            x = step(x, gen)
        assert fused.shape == (3, 24, 32)
        assert torch.allclose(fused, x, atol=2e-4, rtol=0), float((fused - x).abs().max())
        assert not torch.allclose(fused, t(img, torch.Generator().manual_seed(seed + 10)))
