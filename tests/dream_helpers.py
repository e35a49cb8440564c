"""Shared by the `zoo dream` CLI tests: a ZOO_HOME where the built-in brain is built once per test
module (fixtures `built_home`, module-scoped, and `home`, which points ZOO_HOME at it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli import main

MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dream_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        assert main(["layers", MODEL]) == 0
    return home


@pytest.fixture
def home(built_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_HOME", str(built_home))
    return built_home


def assert_tiling_is_exact(brain, net, objective, x, whole, tilings, thin, shift) -> None:
    """Tiled gradients equal the whole image's where tiles overlap fully, with tolerances that come from
    references computed here, not from one CPU's rounding.

    The tiling's arithmetic is checked in float64 on the plain module, where no max-pool near-tie can
    round two ways: tiles and whole image agree within a few float32 ulps of the gradient's scale (a
    few constants on the path are float32; 4e-8 of the scale measured, a seam gives 1e-2). The fast
    fp32 net is then held to the fp32 whole image's own error against that float64 reference, since
    which kernels oneDNN picks (and so how near-ties round) varies by CPU model.
    `thin` overlaps too little: its seams must show, so the check can fail.
    """
    import torch
    from zoo.convert.torch_module import CaffeModule
    from zoo.dream import render
    from zoo.dream.brain import freeze

    ref_net = freeze(CaffeModule(brain.graph.truncated(list(objective.blobs)))).double()
    x64 = x.double()
    _, full64 = render.tiled_gradient(ref_net, objective, x64, whole, shift=shift)
    _, full32 = render.tiled_gradient(net, objective, x, whole, shift=shift)
    scale = float(full64.abs().max())
    ulps = 16 * torch.finfo(torch.float32).eps * scale  # the blend weights' own rounding, with room
    err = lambda g: float((g.double() - full64).norm() / full64.norm())  # noqa: E731
    for tiles in tilings:
        assert len(tiles) > 2
        _, tiled64 = render.tiled_gradient(ref_net, objective, x64, tiles, shift=shift)
        assert float((tiled64 - full64).abs().max()) <= ulps, float((tiled64 - full64).abs().max()) / scale
        _, tiled32 = render.tiled_gradient(net, objective, x, tiles, shift=shift)
        assert err(tiled32) <= 1.5 * err(full32) + 1e-6, (err(tiled32), err(full32))
    _, seams = render.tiled_gradient(ref_net, objective, x64, thin, shift=shift)
    assert float((seams - full64).abs().max()) > 1e-2 * scale
