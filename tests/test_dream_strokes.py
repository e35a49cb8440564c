"""The differentiable stroke rasteriser against numpy (Bernstein curves, distances to a segment, the
over operator one stroke at a time) and against CairoSVG drawing the SVG zoo writes."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from zoo.dream import paint, strokes, svg


def _np_bezier(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    coef = [(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3]
    return sum(c[:, None] * p[i] for i, c in enumerate(coef))


def test_bezier_matches_bernstein_form():
    rng = np.random.default_rng(1)
    p = rng.uniform(-50, 50, size=(5, 4, 2))
    got = strokes.bezier(torch.tensor(p), 9).numpy()
    t = np.linspace(0, 1, 9)
    for k in range(5):
        np.testing.assert_allclose(got[k], _np_bezier(p[k], t), atol=1e-9)


def _segment_distance(px, py, a, b):
    """Distance from pixel centres to the segment a-b, plainly (numpy)."""
    ab = np.subtract(b, a)
    t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / (ab @ ab), 0, 1)
    return np.hypot(px - a[0] - t * ab[0], py - a[1] - t * ab[1])


@pytest.mark.parametrize("tile", [8, 16, 32])
def test_straight_stroke_covers_by_distance(tile):
    """Collinear, evenly spaced control points make a straight segment: coverage is the ramp on the
    analytic distance from each pixel centre to it, whatever the tile size."""
    a, b = np.array([7.3, 9.1]), np.array([41.7, 30.2])
    pts = torch.tensor(np.stack([a + (b - a) * f for f in (0, 1 / 3, 2 / 3, 1)])[None], dtype=torch.float64)
    width = 5.0
    s = strokes.Strokes(pts, torch.tensor([width], dtype=torch.float64), torch.tensor([[1.0, 1.0, 1.0, 1.0]],
                                                                                    dtype=torch.float64))
    h, w = 40, 52
    img = strokes.rasterise(s, (h, w), torch.zeros(3, h, w, dtype=torch.float64), tile=tile).numpy()
    py, px = np.mgrid[0:h, 0:w] + 0.5
    expected = np.clip(0.5 + (width / 2 - _segment_distance(px, py, a, b)), 0, 1)
    np.testing.assert_allclose(img[0], expected, atol=1e-6)
    assert expected.sum() > 100  # the stroke is there


def test_scale_renders_the_same_strokes_larger():
    """At scale 2 a straight stroke covers pixels by distance in the doubled picture."""
    a, b = np.array([3.0, 4.0]), np.array([20.0, 11.0])
    pts = torch.tensor(np.stack([a + (b - a) * f for f in (0, 1 / 3, 2 / 3, 1)])[None], dtype=torch.float64)
    s = strokes.Strokes(pts, torch.tensor([2.0], dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64))
    img = strokes.rasterise(s, (32, 48), torch.zeros(3, 32, 48, dtype=torch.float64), scale=2.0).numpy()
    py, px = np.mgrid[0:32, 0:48] + 0.5
    expected = np.clip(0.5 + (2.0 - _segment_distance(px, py, a * 2, b * 2)), 0, 1)
    np.testing.assert_allclose(img[1], expected, atol=1e-6)


def test_over_matches_one_stroke_after_another():
    rng = np.random.default_rng(2)
    bg = rng.uniform(size=(3, 20))
    colours = rng.uniform(size=(6, 3))
    alphas = rng.uniform(size=(6, 20))
    alphas[2, :5] = 1.0  # fully opaque pixels: products through zero
    expected = bg.copy()
    for c, a in zip(colours, alphas):
        expected = expected * (1 - a) + c[:, None] * a
    got = strokes.over(torch.tensor(bg)[None], torch.tensor(colours)[None], torch.tensor(alphas)[None])[0]
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_gradients_reach_every_parameter():
    rng = np.random.default_rng(3)
    s = strokes.random_strokes(12, (48, 48), rng, width=(1.0, 3.0))
    param = strokes.StrokeParam(s, 0.5, 6.0)
    img = strokes.rasterise(param(), (48, 48), torch.full((3, 48, 48), 0.5))
    (img[0] * torch.linspace(0, 1, 48)).sum().backward()
    for name, p in param.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_batches_recomputed_in_the_backward_give_the_same_gradients(monkeypatch):
    """A canvas cut into several batches (checkpointed) has the gradients of one batch kept whole."""
    rng = np.random.default_rng(6)
    s = strokes.random_strokes(20, (40, 56), rng, width=(1.0, 3.0))
    bg = torch.full((3, 40, 56), 0.3)

    def grads() -> list[torch.Tensor]:
        param = strokes.StrokeParam(s, 0.5, 6.0)
        img = strokes.rasterise(param(), (40, 56), bg, tile=8)
        (img * torch.linspace(0, 1, 56)).sum().backward()
        return [img.detach()] + [p.grad.clone() for p in param.parameters()]

    whole = grads()
    monkeypatch.setattr(strokes, "BATCH_ELEMENTS", 8 * 8 * strokes.SEGMENTS * 4)  # a few tiles a batch
    for a, b in zip(whole, grads()):
        torch.testing.assert_close(a, b)


def _svg_of(s: strokes.Strokes, size: tuple[int, int], background: str = "#808080") -> str:
    paths = svg.stroke_paths(s.points.numpy(), s.width.numpy(), s.rgba.numpy())
    return svg.strokes_svg(size, paths, background, '{"a": "<b> & c"}')


def test_cairosvg_draws_what_the_rasteriser_draws():
    """The SVG zoo writes, drawn by CairoSVG (another renderer), at 1x and 3x (scaled back), is the
    picture the torch rasteriser optimised: mean difference under 2 of 255."""
    cairosvg = pytest.importorskip("cairosvg")
    from PIL import Image

    rng = np.random.default_rng(4)
    h, w = 64, 96
    s = strokes.random_strokes(60, (h, w), rng, width=(1.0, 4.0))
    s = strokes.Strokes(torch.tensor(np.round(s.points.numpy(), 2)), torch.tensor(np.round(s.width.numpy(), 2)),
                        torch.tensor(np.round(s.rgba.numpy() * 255) / 255))  # what the SVG's text keeps
    ours = strokes.rasterise(s, (h, w), torch.full((3, h, w), 128 / 255)).numpy().transpose(1, 2, 0) * 255
    text = _svg_of(s, (h, w))
    for k in (1, 3):
        png = cairosvg.svg2png(bytestring=text.encode(), output_width=w * k, output_height=h * k)
        theirs = Image.open(io.BytesIO(png)).convert("RGB")
        theirs = np.asarray(theirs.resize((w, h), Image.BOX), dtype=np.float64)
        assert np.abs(theirs - ours).mean() < 2.0, k


def test_svg_document_is_valid_and_carries_metadata(tmp_path):
    rng = np.random.default_rng(5)
    s = strokes.random_strokes(400, (256, 256), rng)
    text = _svg_of(s, (256, 256))
    root = ET.fromstring(text)
    assert root.get("viewBox") == "0 0 256 256"
    assert len(root.findall(f".//{{{svg.NS}}}path")) == 400
    assert len(text.encode()) < 1 << 20
    path = tmp_path / "s.svg"
    path.write_text(text)
    assert svg.read_metadata(path) == '{"a": "<b> & c"}'


def test_adam_step_matches_the_paper_on_one_number():
    """First Adam step moves by lr·sign(g) (bias-corrected moments); the second as the formula says."""
    p = torch.tensor([1.0])
    moments: dict = {}
    paint.adam_step(p, torch.tensor([0.5]), moments, "x", 0.1, 1)
    assert p.item() == pytest.approx(1.1, abs=1e-6)
    paint.adam_step(p, torch.tensor([-0.5]), moments, "x", 0.1, 2)
    m = (0.9 * 0.1 * 0.5 + 0.1 * -0.5) / (1 - 0.81)
    v = (0.999 * 0.001 * 0.25 + 0.001 * 0.25) / (1 - 0.999 ** 2)
    assert p.item() == pytest.approx(1.1 + 0.1 * m / (v ** 0.5 + 1e-8), abs=1e-6)


def test_reach_keeps_control_points_near_the_first():
    """With a reach, the parametrisation starts at the strokes it was given (shortened to the reach)
    and no step, however large, carries a control point farther than the reach from its first."""
    rng = np.random.default_rng(7)
    s = strokes.random_strokes(30, (64, 64), rng, reach=0.3)
    near = strokes.within(s, 10.0)
    off = (s.points[:, 1:] - s.points[:, :1]).norm(dim=-1)
    kept = (near.points[:, 1:] - near.points[:, :1]).norm(dim=-1)
    assert off.max() > 10 and kept.max() <= 9.5 + 1e-4  # some were longer; all shortened to 0.95 reach
    short = off <= 9.5
    torch.testing.assert_close(kept[short], off[short])
    param = strokes.StrokeParam(near, 0.5, 6.0, reach=10.0)
    torch.testing.assert_close(param().points, near.points, atol=1e-4, rtol=0)
    with torch.no_grad():
        param.offset.add_(torch.tensor(rng.normal(0, 500, size=param.offset.shape), dtype=torch.float32))
    pts = param().points
    assert (pts[:, 1:] - pts[:, :1]).norm(dim=-1).max() <= 10.0 + 1e-4
