"""The opt-in compiled path (`zoo dream --compile`, zoo.dream.compiled) gives the plain path's gradient,
keeps its compiled kernels on disk under $ZOO_HOME, and a second process loads them from there.

A tiny net (conv, ReLU, ceil max-pool, across-channel LRN with its own backward, two branches and a
Concat) keeps each compile to seconds. One `zoo dream --compile` process compiles it cold into a fresh
ZOO_HOME; a second, fresh process compiles the same net at the same size again, which inductor must
serve from that cache, and compares the compiled gradient with the eager fp32 one and a float64 one.
Where inductor cannot build here (no C++ compiler), everything skips with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.caffe_helpers import seeded_files
from zoo.cli import main
from zoo.errors import UserError

pytestmark = pytest.mark.xdist_group("compile")  # one compile at a time: they take both cores

TINY = """
name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1"
        lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 k: 1 } }
layer { name: "a" type: "Convolution" bottom: "norm1" top: "a" convolution_param { num_output: 8 kernel_size: 1 } }
layer { name: "relu_a" type: "ReLU" bottom: "a" top: "a" }
layer { name: "b" type: "Convolution" bottom: "norm1" top: "b"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu_b" type: "ReLU" bottom: "b" top: "b" }
layer { name: "mix" type: "Concat" bottom: "a" bottom: "b" top: "mix" }
"""
MODEL, BLOB, SIDE = "tiny_compile", "mix", 64

# run in a fresh process: the compiled gradient (served from the cache the CLI run filled), the eager
# fp32 one and a float64 one, at the size the CLI dreamt at, plus inductor's cache counters
CHILD = f"""
import json, torch
from torch._dynamo.utils import counters
from zoo.convert.torch_module import CaffeModule
from zoo.dream import objectives, render
from zoo.dream.brain import freeze, load_brain
from zoo.dream.compiled import CompiledNet
brain = load_brain({MODEL!r})
x = torch.from_numpy(brain.preprocess.to_net(
    __import__("numpy").random.default_rng(0).uniform(0, 255, ({SIDE}, {SIDE}, 3)).astype("float32")))[None]
obj = objectives.blob_l2({BLOB!r})
grad = lambda net, x: render.objective_gradient(net, obj, x)[1]
fast = brain.net_for([{BLOB!r}], compile=True)
assert isinstance(fast, CompiledNet)
g1 = grad(fast, x)
g0 = grad(brain.net_for([{BLOB!r}]), x)
ref = grad(freeze(CaffeModule(brain.graph.truncated([{BLOB!r}]))).double(), x.double())
err = lambda g: float((g.double() - ref).norm() / ref.norm())
print(json.dumps({{"err_compiled": err(g1), "err_eager": err(g0),
                  "compiled_vs_eager": float((g1 - g0).norm() / g0.norm()),
                  "inductor": dict(counters["inductor"]), "aot": dict(counters["aot_autograd"]),
                  "graphs": counters["stats"]["unique_graphs"], "breaks": dict(counters["graph_break"])}}))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(home, the cold `zoo dream --compile` process, files in the cache before it, the second process's JSON)."""
    from zoo.dream import compiled

    try:
        compiled.check("cpu")
    except UserError as e:
        pytest.skip(f"inductor cannot build here: {e}")
    home = tmp_path_factory.mktemp("compile_home")
    folder = tmp_path_factory.mktemp("compile_files")
    proto, weights, _ = seeded_files(TINY, folder, seed=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        assert main(["convert", str(proto), "--weights", str(weights), "--name", MODEL, "-o", str(folder),
                     "-f", "onnx"]) == 0
    img = folder / "start.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(img)
    env = {**os.environ, "ZOO_HOME": str(home)}
    env.pop("TORCHINDUCTOR_CACHE_DIR", None)
    cache = home / "cache" / "compile"
    before = sum(1 for p in cache.rglob("*") if p.is_file()) if cache.exists() else 0
    cli = subprocess.run([sys.executable, "-m", "zoo.cli", "dream", str(img), "-o", str(folder / "out.png"),
                          "--model", MODEL, "--layer", BLOB, "--octaves", "1", "--iterations", "2", "--compile",
                          "--device", "cpu"], capture_output=True, text=True, env=env, timeout=300)
    if cli.returncode != 0 and "--compile" in cli.stderr and "error:" in cli.stderr:
        pytest.skip(f"inductor cannot build here: {cli.stderr.strip().splitlines()[-1]}")
    assert cli.returncode == 0, cli.stderr[-3000:]
    child = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr[-3000:]
    return home, cli, before, folder / "out.png", json.loads(child.stdout.strip().splitlines()[-1])


def test_cli_compile_writes_a_png_whose_recipe_says_compile(runs):
    from zoo.dream.recipe import read_recipe

    home, cli, _, out, _ = runs
    rec = read_recipe(out)
    assert rec.compile is True and rec.model == MODEL
    assert "--compile" in rec.command()
    assert "compiling the net for 1 octave size" in cli.stderr  # said once, before the first step
    assert cli.stderr.count("compiling the net") == 1
    assert str(home / "cache" / "compile") in cli.stderr.replace("\n", "")


def test_default_recipe_has_no_compile_key():
    """Recipes of the default path are byte for byte what they were before --compile existed."""
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe

    rec = Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams())
    assert "compile" not in json.loads(rec.to_json())
    assert Recipe.from_json(rec.to_json()) == rec
    on = rec.with_(compile=True)
    assert json.loads(on.to_json())["compile"] is True and Recipe.from_json(on.to_json()) == on
    with pytest.raises(UserError, match="compile"):
        Recipe.from_json(json.dumps({**json.loads(on.to_json()), "compile": "yes"}))


def test_compiled_gradient_equals_plain_fp32(runs):
    """Through conv, ReLU, ceil max-pool, the LRN's own backward and Concat: the compiled gradient is
    the eager fp32 gradient within float tolerance, and no further from float64 than it."""
    r = runs[-1]
    # the bound is the eager gradient's own error against the float64 reference measured in the run
    # (which kernels oneDNN or inductor pick varies by CPU model); a fixed bound on compiled - eager
    # held only on the machine it was measured on
    assert r["err_compiled"] <= 1.5 * r["err_eager"] + 1e-6, r


def test_compiled_net_is_one_graph(runs):
    """The whole truncated net is one graph: a break per layer (as a ContextVar read in the layer
    handlers once caused) compiles each layer alone and runs slower than eager."""
    r = runs[-1]
    assert r["breaks"] == {} and r["graphs"] == 1, r


def test_second_process_is_served_from_the_disk_cache(runs):
    home, _, before, _, r = runs
    cache = home / "cache" / "compile"
    assert before == 0
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert len(files) > 10, files  # the first process wrote its graphs and kernels there
    assert r["inductor"].get("fxgraph_cache_hit", 0) > 0, r
    assert r["inductor"].get("fxgraph_cache_miss", 0) == 0, r
    assert r["aot"].get("autograd_cache_hit", 0) > 0, r
    assert (next(cache.iterdir()) / "seen.txt").read_text().count(f"{SIDE}x{SIDE}") == 1


def test_no_compiler_is_one_line(monkeypatch):
    """Without a C++ compiler --compile is refused with one line that says so (exit 1 in the CLI)."""
    from torch._inductor import cpp_builder
    from zoo.dream import compiled

    def missing():
        raise RuntimeError("no compiler")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", missing)
    with pytest.raises(UserError, match="no C\\+\\+ compiler found"):
        compiled.check("cpu")


def test_cache_lives_under_zoo_home(tmp_path, monkeypatch):
    from zoo.dream import compiled

    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    assert compiled.cache_dir().is_relative_to(tmp_path / "cache" / "compile")
    assert Path(compiled.cache_dir()).name.startswith("torch-")
