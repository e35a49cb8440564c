"""The machinery of the CLI property test (tests/test_cli_property.py) and its long run
(scripts/fuzz_cli.py): hypothesis strategies for `zoo` command lines built from mutated arguments,
files and environment values, and the checks every run must pass.

A `World` is a set of temporary folders: `home` ($ZOO_HOME, shared by the examples so models stay
cached), `inputs` (real files that are never to change), `mirror` (a folder mirror with
mtcnn_det1), `work` (the current directory), `out` (where outputs are asked for), `cases` (mutated
files), and `outside` (must not change). Every command runs in-process through zoo.cli.main with
stdout and stderr captured; an exception escaping main is the traceback a user would have seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import strategies as st

from tests.conftest import SHARED

MTCNN = SHARED / "models" / "mtcnn"
EXIT_CODES = {0, 1, 2, 130}
LEFTOVER_SUFFIXES = (".part", ".tmp", ".lock")


@dataclass
class World:
    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def inputs(self) -> Path:
        return self.root / "inputs"

    @property
    def mirror(self) -> Path:
        return self.root / "mirror"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def cases(self) -> Path:
        return self.root / "cases"

    @property
    def outside(self) -> Path:
        return self.root / "outside"


def make_world(root: Path) -> World:
    """Real input files: MTCNN det1/det3 Caffe files, a photo, a mean, labels, a user models.toml,
    a class-folder dataset of real faces."""
    from PIL import Image
    from skimage import data

    w = World(root)
    for d in (w.home, w.inputs, w.mirror / "mtcnn_det1", w.work, w.out, w.cases, w.outside):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("det1.prototxt", "det1.caffemodel", "det3.prototxt", "det3.caffemodel"):
        shutil.copy(MTCNN / name, w.inputs / name)
    for name in ("det1.prototxt", "det1.caffemodel"):
        shutil.copy(MTCNN / name, w.mirror / "mtcnn_det1" / name)
    Image.fromarray(data.chelsea()).resize((64, 48)).save(w.inputs / "cat.jpg", quality=90)
    Image.fromarray(data.coffee()).resize((48, 48)).save(w.inputs / "coffee.png")
    mean = SHARED / "models" / "gender_net" / "mean.binaryproto"
    if mean.exists():
        shutil.copy(mean, w.inputs / "mean.binaryproto")
    (w.inputs / "labels.txt").write_text("face\nnot face\n", encoding="utf-8")
    _outputs(w.inputs)
    sha = hashlib.sha256((w.inputs / "det1.caffemodel").read_bytes()).hexdigest()
    psha = hashlib.sha256((w.inputs / "det1.prototxt").read_bytes()).hexdigest()
    (w.inputs / "models.toml").write_text(
        '[models.mine]\ntitle = "mine"\ntask = "classify"\nlicense = "l"\norigin = "o"\ninput_size = [12, 12]\n'
        'channel_order = "BGR"\nmean = [104.0, 117.0, 123.0]\nnum_classes = 2\noutput = "prob1"\ndefault_blob = "conv3"\n'
        'labels = {names = ["a", "b"]}\n'
        f'files.prototxt = {{url = "{(w.inputs / "det1.prototxt").as_uri()}", sha256 = "{psha}"}}\n'
        f'files.weights = {{url = "{(w.inputs / "det1.caffemodel").as_uri()}", sha256 = "{sha}"}}\n',
        encoding="utf-8")
    faces = w.inputs / "faces"
    for g in ("female", "male"):
        (faces / g).mkdir(parents=True, exist_ok=True)
        for f in sorted((SHARED / "datasets" / "lfw_gender" / g).glob("*.jpg"))[:3]:
            shutil.copy(f, faces / g / f.name)
    (w.outside / "keep.txt").write_text("outside the temporary folders the commands were given")
    return w


def _outputs(folder: Path) -> None:
    """Files as zoo writes them, carrying their records (for `zoo info` to read, mutated): a dream's
    PNG and a stroke SVG, written by hand with zoo's own writers of the record (no dream is run)."""
    import json

    import numpy as np
    from PIL import Image
    from zoo.dream import svg
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe, png_info

    rec = Recipe(model="mtcnn_det1", weights_sha256="ab" * 32, layers=("conv3",), params=DreamParams(tile=64),
                 seed=1, weights=(1.0,), input=str(folder / "coffee.png"))
    Image.new("RGB", (16, 16), (90, 40, 10)).save(folder / "dream.png", pnginfo=png_info(rec))
    meta = json.dumps({"recipe": json.loads(rec.to_json()), "strokes": {"count": 1}})
    stroke = svg.stroke_paths(np.array([[[1, 1], [4, 3], [7, 6], [9, 9]]], float), np.ones(1), np.full((1, 4), 0.5))
    (folder / "strokes.svg").write_text(svg.strokes_svg((16, 16), stroke, "#808080", meta), encoding="utf-8")


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha1(p.read_bytes()).hexdigest()
        else:
            out[str(p.relative_to(root))] = "dir" if p.is_dir() else "other"
    return out


# --- strategies --------------------------------------------------------------------------------------

MUTATIONS = ("keep", "truncate", "flip", "insert", "garbage", "empty", "head")


@st.composite
def mutated_file(draw: st.DrawFn, world: World, base: str) -> str:
    """A copy of inputs/BASE (same suffix) with one mutation, in `cases`; returns its path."""
    data = (world.inputs / base).read_bytes()
    how = draw(st.sampled_from(MUTATIONS))
    if how == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flip" and data:
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1 :]
    elif how == "insert":
        i = draw(st.integers(0, len(data)))
        data = data[:i] + draw(st.binary(min_size=1, max_size=16)) + data[i:]
    elif how == "garbage":
        data = draw(st.binary(max_size=256))
    elif how == "empty":
        data = b""
    elif how == "head":
        data = data[:64]
    n = draw(st.integers(0, 10**9))
    path = world.cases / f"m{n}{Path(base).suffix if Path(base).suffix else ''}"
    if base.endswith(".binaryproto"):
        path = world.cases / f"m{n}.binaryproto"
    path.write_bytes(data)
    return str(path)


def path_arg(world: World, *bases: str) -> st.SearchStrategy[str]:
    """A path argument: a real input, a mutated one, a folder, a missing file, or odd text."""
    options = [st.sampled_from([str(world.inputs / b) for b in bases])] if bases else []
    options += [mutated_file(world, b) for b in bases]
    options += [st.sampled_from([str(world.inputs), str(world.root / "missing.bin"), "", "-", "..", str(world.cases),
                                 str(world.inputs / "faces")])]
    return st.one_of(*options)


WORDS = st.sampled_from(["mtcnn_det1", "mine", "efficientnet_lite0", "..", ".", "a.b", "../../outside", "x/y",
                         "", "-", "bvlc_googlnet", "ü", "a" * 80, "nope", "--help"])
NUMBERS = st.sampled_from(["0", "1", "2", "-1", "abc", "1e3", "nan", "inf", "", "3.5", "99999999999999999999"])
SHAPES = st.sampled_from(["1,3,12,12", "1,3,24,24", "0,3,12,12", "1,3", "a,b,c,d", "1,3,-12,12", "1x3x12x12", ""])
ENV = st.one_of(st.just({}), st.just({}), st.fixed_dictionaries({}, optional={
    "ZOO_FETCH_RETRIES": st.sampled_from(["0", "abc", "-1", ""]),
    "ZOO_FETCH_TIMEOUT": st.sampled_from(["1", "-1", "x", "0"]),
    "ZOO_FETCH_DEADLINE": st.sampled_from(["5", "0", "later"]),
    "ZOO_MIRROR": st.sampled_from(["", "/nonexistent/mirror", "http://127.0.0.1:9/zoo"]),
    "ZOO_HOME": st.sampled_from(["/proc/zoo-home", "/dev/null/zoo"]),  # cannot be created
}))


def options(draw: st.DrawFn, table: dict[str, st.SearchStrategy[str] | None]) -> list[str]:
    """Some of the options in `table` (None: a flag), in a drawn order."""
    names = draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=4))
    argv: list[str] = []
    for name in names:
        argv.append(name)
        if table[name] is not None:
            argv.append(draw(table[name]))
    return argv


def commands(world: World) -> st.SearchStrategy[list[str]]:
    """One `zoo` command line. Dream and train get small sizes and iteration counts only (see the
    exclusions in test_cli_property.py)."""
    proto = path_arg(world, "det1.prototxt", "det3.prototxt")
    weights = path_arg(world, "det1.caffemodel", "det3.caffemodel")
    image = path_arg(world, "cat.jpg", "coffee.png")
    out = st.sampled_from([str(world.out / "a"), str(world.out), str(world.out / "x.v2"), str(world.out / "o.onnx"),
                           str(world.inputs / "cat.jpg" / "sub"), str(world.root / "no" / "such" / "dir" / "o")])
    mean = path_arg(world, "mean.binaryproto") if (world.inputs / "mean.binaryproto").exists() else path_arg(world)

    @st.composite
    def convert(draw: st.DrawFn) -> list[str]:
        return ["convert", draw(proto), *options(draw, {
            "-w": weights, "-o": out, "-f": st.sampled_from(["onnx", "caffe", "pt", "tf"]), "--input-shape": SHAPES,
            "--mean": mean, "--name": WORDS, "--labels": path_arg(world, "labels.txt", "cat.jpg"),
            "--mean-pixel": st.sampled_from(["104,117,123", "1,2", "a,b,c"]),
            "--channel-order": st.sampled_from(["RGB", "bgr", "XYZ"]), "--scale": NUMBERS})]

    @st.composite
    def info(draw: st.DrawFn) -> list[str]:
        made = path_arg(world, "dream.png", "strokes.svg")  # `zoo info` on what zoo wrote
        return ["info", draw(st.one_of(proto, WORDS, made)), *options(draw, {"-w": weights, "--input-shape": SHAPES})]

    @st.composite
    def fetch(draw: st.DrawFn) -> list[str]:
        return ["fetch", *draw(st.lists(WORDS.filter(lambda w: w not in ("efficientnet_lite0",)), min_size=0,
                                        max_size=2))]

    @st.composite
    def remove(draw: st.DrawFn) -> list[str]:
        return ["remove", draw(WORDS)]

    @st.composite
    def classify(draw: st.DrawFn) -> list[str]:
        return ["classify", *draw(st.lists(image, min_size=0, max_size=2)), *options(draw, {
            "-m": st.sampled_from(["mtcnn_det1", "mine", "..", "nope"]), "--top": NUMBERS, "--json": None,
            "--offline": None, "--batch": NUMBERS})]

    @st.composite
    def layers(draw: st.DrawFn) -> list[str]:
        return ["layers", draw(WORDS)]

    @st.composite
    def dream(draw: st.DrawFn) -> list[str]:
        small = st.sampled_from(["0", "1", "2", "-1", "abc"])
        return ["dream", draw(image), "-m", "mtcnn_det1", "--iterations", "1", "--octaves", "1", "--size", "24",
                *options(draw, {"-o": st.sampled_from([str(world.out / "d.png"), str(world.out / "d.v2"),
                                                       str(world.out), str(world.inputs / "cat.jpg" / "x.png")]),
                                "--octaves": small, "--iterations": small, "--size": st.sampled_from(
                                    ["16", "0", "x", "24x16", "-5", "16x"]),
                                "--layer": st.sampled_from(["conv3", "conv3:1", "nope", "conv3:999", ":", "conv3:a"]),
                                "--step": st.sampled_from(["1", "0", "nan", "-1", "x"]),
                                "--jitter": small, "--seed": NUMBERS, "--octave-scale": st.sampled_from(
                                    ["1.4", "0", "-1", "x"]), "--recipe": path_arg(world, "cat.jpg", "coffee.png"),
                                "--init": st.sampled_from(["image", "noise", "noise:x", "bogus"])})]

    @st.composite
    def train(draw: st.DrawFn) -> list[str]:
        return ["train", "--dataset", draw(st.one_of(st.just(str(world.inputs / "faces")), path_arg(world))),
                "--out", str(world.out / f"run{draw(st.integers(0, 3))}"), "-q", "--no-preview", "--workers", "0",
                "--max-iter", draw(st.sampled_from(["1", "0", "-1", "x"])), "--batch", draw(
                    st.sampled_from(["2", "4", "0", "3", "x"])),
                "--model", str(world.inputs / "det3.prototxt"), "--weights", draw(weights), "--like", "mtcnn_det3"]

    @st.composite
    def export(draw: st.DrawFn) -> list[str]:
        return ["export", draw(st.sampled_from([str(world.out / "run0"), str(world.inputs), str(world.root / "no")])),
                "--name", draw(WORDS)]

    @st.composite
    def data_pack(draw: st.DrawFn) -> list[str]:
        return ["data", "pack", draw(st.one_of(st.just(str(world.inputs / "faces")), path_arg(world))),
                *options(draw, {"--size": st.sampled_from(["16", "0", "-1", "x"])})]

    @st.composite
    def small(draw: st.DrawFn) -> list[str]:
        return draw(st.sampled_from([["list"], ["--help"], [], ["nosuchcommand"], ["list", "--bogus"]]))

    return st.one_of(convert(), info(), fetch(), remove(), classify(), layers(), dream(), train(), export(),
                     data_pack(), small())


def user_toml(world: World) -> st.SearchStrategy[str | None]:
    """None (leave $ZOO_HOME/models.toml as it is), or a mutation of the real user models.toml."""
    return st.one_of(st.none(), st.none(), st.none(), mutated_file(world, "models.toml"))


# --- one run and its checks ---------------------------------------------------------------------------------


@dataclass
class Result:
    argv: list[str]
    rc: int | None
    out: str
    err: str
    crash: str  # the traceback of an exception that escaped zoo.cli.main, else ""


def run_main(argv: list[str], env: dict[str, str], world: World, toml: str | None) -> Result:
    """Run `zoo ARGV` in-process in the world's work folder with env overrides."""
    import zoo.cli

    base = {"ZOO_HOME": str(world.home), "ZOO_MIRROR": str(world.mirror), "ZOO_DATA_DIR": str(world.home / "data"),
            "ZOO_FETCH_RETRIES": "0", "ZOO_FETCH_TIMEOUT": "2", "HOME": str(world.work)}
    user = world.home / "models.toml"
    if toml is not None:
        shutil.copy(toml, user)
    elif not user.exists():
        shutil.copy(world.inputs / "models.toml", user)
    out, err, crash, rc = io.StringIO(), io.StringIO(), "", None
    try:
        with pytest.MonkeyPatch.context() as mp:  # environment and folder restored however main ends
            for k, v in {**base, **env}.items():
                mp.setenv(k, v)
            mp.delenv("ZOO_PACK_DIR", raising=False)
            mp.chdir(world.work)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = zoo.cli.main(argv)
                except SystemExit as e:  # a command that calls sys.exit itself
                    rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:  # noqa: BLE001 - this is what the test looks for
                    crash = traceback.format_exc()
    finally:
        if toml is not None:
            shutil.copy(world.inputs / "models.toml", user)  # the next example starts from a valid file
    return Result(argv, rc, out.getvalue(), err.getvalue(), crash)


def leftovers(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        for p in root.rglob("*"):
            name = p.name
            if name.endswith(LEFTOVER_SUFFIXES) or ".part." in name or ".tmp." in name:
                found.append(str(p))
    return sorted(found)


def named_beside(argv: list[str], world: World) -> set[str]:
    """The entries beside the temporary folders that the command line names (`-o ROOT/no/such/dir/o`:
    "no"): a convert that succeeds makes the folders its -o names."""
    root = world.root.resolve()
    named = set()
    for a in argv:
        try:
            named.add(Path(a).resolve().relative_to(root).parts[0])
        except (ValueError, IndexError, OSError):
            continue
    return named


def check(result: Result, world: World, before_inputs: dict[str, str], before_outside: dict[str, str],
          before_root: list[str]) -> list[str]:
    """The problems with one run (empty: all good)."""
    problems = []
    if result.crash:
        problems.append(f"exception escaped main:\n{result.crash}")
    if "Traceback" in result.err:
        problems.append(f"traceback on stderr:\n{result.err}")
    if result.rc not in EXIT_CODES and not result.crash:
        problems.append(f"exit code {result.rc!r}")
    if snapshot(world.inputs) != before_inputs:
        problems.append("an input file was changed, created or removed")
    if snapshot(world.outside) != before_outside:
        problems.append("a file outside the temporary folders was changed")
    new = set(os.listdir(world.root)) - set(before_root)
    if new - (named_beside(result.argv, world) if result.rc == 0 else set()):  # a finished run may make what -o named
        problems.append(f"something was created beside the temporary folders: {sorted(os.listdir(world.root))}")
    left = leftovers(world.home, world.out, world.work, world.cases)
    if left:
        problems.append(f"partial outputs left: {left}")
    return problems


Excluder = Callable[[list[str], dict[str, str]], str | None]
