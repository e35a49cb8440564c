"""The classic DeepDream path stays bit-identical: pixels pinned by hashes taken BEFORE the legible
work (transforms, parametrisations, balanced objectives) was added, at commit 322ef76.

Hashes are of the uint8 pixels on this project's CPU machine (2 threads); a recipe written before
those fields existed must reproduce them exactly, and a new recipe with today's defaults too.
Bit for bit holds on one kind of CPU only: oneDNN picks its kernels (and so its order of float
sums) by instruction set, so on another vendor or instruction set the pins are skipped, not failed.
"""

from __future__ import annotations

import hashlib

import pytest
from zoo.dream import run
from zoo.dream.output import to_uint8
from zoo.dream.recipe import Recipe

from tests import dream_helpers

built_home, home = dream_helpers.built_home, dream_helpers.home  # the shared fixtures

DEFAULT_GRADIENT_96 = "584053643023226cef6a8dae5c95ed496dc86de797e68240ec489c88293b59f4"
OLD_CLASS = ('{"device": "cpu", "format": 1, "frames": 1, "guide": null, "guide_sha256": null, "init": "noise", '
             '"input": null, "input_sha256": null, "interrupted": false, "layers": ["prob:1"], '
             '"model": "efficientnet_lite0", "params": {"clip": true, "iterations": 3, "jitter": 32, '
             '"octave_scale": 1.4, "octaves": 2, "step": 1.5, "tile": 448}, "preset": null, "rotate": 0.0, '
             '"seed": 0, "size": "96x96", "steps_done": null, "version": "0.1.0", "weights": [], '
             '"weights_sha256": "0e0359f119522f8372773e6fbaf5f1f11dd7b151d4f066de556464008b522053", "zoom": 1.05}')
OLD_CLASS_HASH = "5bb75b12a80a894959295944b8e19fa5854c8fdb5f1af0073f6eb14e54b18241"
OLD_TWO = OLD_CLASS.replace('"init": "noise"', '"init": "gradient"').replace(
    '["prob:1"]', '["block4/output", "block10/output"]').replace('"tile": 448', '"tile": 480')
OLD_TWO_HASH = "783d169ad503b71073c5d199cec3a0c08dd4cbc3bd85db7b8c2a9b703e09a1e2"


PINNED_ON = ("AuthenticAMD", "AVX512", "")  # vendor, torch's CPU capability, ONEDNN_MAX_CPU_ISA


def _cpu() -> tuple[str, str, str]:
    import os
    import re
    from pathlib import Path

    import torch

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    vendor = (re.findall(r"^vendor_id\s*:\s*(\S+)", info, re.M) or [""])[0]
    return vendor, torch.backends.cpu.get_cpu_capability(), os.environ.get("ONEDNN_MAX_CPU_ISA", "")


@pytest.fixture(autouse=True)
def _same_kind_of_cpu():
    if _cpu() != PINNED_ON:
        pytest.skip(f"pixels were pinned on {PINNED_ON}; this CPU is {_cpu()} (float sums run in another order)")


def _hash(rgb) -> str:
    return hashlib.sha256(to_uint8(rgb).tobytes()).hexdigest()


@pytest.fixture(autouse=True)
def _two_threads():
    """The hashes were taken with 2 threads: another count sums floats in another order."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_todays_default_recipe_gives_the_same_pixels(home) -> None:
    rec = run.new_recipe(model="efficientnet_lite0", init="gradient", size="96x96")
    assert _hash(run.run_recipe(rec, None).image) == DEFAULT_GRADIENT_96


@pytest.mark.parametrize(("text", "expected"), [(OLD_CLASS, OLD_CLASS_HASH), (OLD_TWO, OLD_TWO_HASH)],
                         ids=["class", "two-layers"])
def test_old_recipes_reproduce(home, text: str, expected: str) -> None:
    rec = Recipe.from_json(text)
    assert _hash(run.run_recipe(rec, None, reproduce=True).image) == expected
