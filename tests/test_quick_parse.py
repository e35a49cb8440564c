"""`zoo convert`, `zoo info` and `zoo dream` parsed without typer: the same parameters typer itself
gives, or typer parses."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys

import pytest
import typer
from zoo.convert import cli as convert_cli
from zoo.dream import cli as dream_cli
from zoo.dream.options import DREAM
from zoo.dream.video_cli import argv_from_context

from tests.conftest import MODELS
from zoo.errors import UsageError
from zoo.quick_parse import quick_call, quick_params

DET3 = MODELS / "mtcnn" / "det3.prototxt"
DET3_W = MODELS / "mtcnn" / "det3.caffemodel"


@pytest.fixture(scope="module")
def commands():
    app = typer.Typer()
    convert_cli.register(app)
    return typer.main.get_command(app).commands


def typer_params(name, args):
    """The reference: what typer itself (its parser and pydantic coercion) calls the command with."""
    seen = {}
    func = {"convert": convert_cli.convert_cmd, "info": convert_cli.info_cmd}[name]

    @functools.wraps(func)
    def record(**kwargs):
        seen.update(kwargs)

    app = typer.Typer()
    app.command(name)(record)
    app.command("other")(lambda: None)  # two commands: `zoo NAME ...` stays a sub-command
    app(args=[name, *args], standalone_mode=False)
    return seen


@pytest.fixture
def files(tmp_path):
    proto = tmp_path / "net.prototxt"
    proto.write_text("input: 'data'\n")
    weights = tmp_path / "net.caffemodel"
    weights.write_bytes(b"")
    mean = tmp_path / "mean.binaryproto"
    mean.write_bytes(b"")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    return proto, weights, mean, labels, tmp_path


def parsed_cases(files):
    proto, weights, mean, labels, folder = (str(f) for f in files)
    return [
        ("convert", [proto]),
        ("convert", [proto, "-w", weights, "-o", f"{folder}/out", "-f", "onnx"]),
        ("convert", ["--weights", weights, proto, "--format", "onnx", "-f", "pt", "--format=safetensors"]),
        ("convert", [proto, "--input-shape", "1,3,224,224", "--mean", mean, "--name", "mine",
                     "--mean-pixel", "104,117,123", "--channel-order", "rgb", "--scale", "0.017",
                     "--labels", labels]),
        ("convert", [proto, "--scale", "-2.5e-1", "--output=" + folder]),
        ("info", [proto]),
        ("info", ["bvlc_googlenet", "--input-shape", "1,3,300,300"]),
        ("info", [proto, "-w", weights]),
    ]


def test_plain_command_lines_parse_as_typer_parses_them(commands, files):
    for name, args in parsed_cases(files):
        got = quick_params(commands[name], args)
        assert got is not None, (name, args)  # the fast path is taken
        assert got == typer_params(name, args), (name, args)


def test_anything_else_is_left_to_typer(commands, files):
    proto, weights, _, _, folder = (str(f) for f in files)
    for args in ([], ["--help"], [proto, "--nope"], [proto, "-w"], [proto, "-w", f"{folder}/missing"],
                 [proto, "-w", folder], [proto, "-f", "tflite"], [proto, "--scale", "inf"],
                 [proto, "--scale", "x"], [proto, proto], [proto, "--", "-w"], [proto, "-w", weights, "-w", weights],
                 [f"{folder}/missing.prototxt"]):
        assert quick_params(commands["convert"], args) is None, args


def test_usage_errors_keep_typers_words_and_exit_2(files, capfd):
    """A bad --input-shape is found in the command's body (BadParameter): typer re-parses and words it."""
    from zoo.cli import main

    proto = str(files[0])
    assert main(["convert", proto, "--input-shape", "1,2,3"]) == 2
    err = capfd.readouterr().err
    assert "Invalid value" in err and "N,C,H,W" in err and "Usage:" in err
    assert main(["convert", proto, "-f", "tflite"]) == 2
    assert "tflite" in capfd.readouterr().err



def _recorder(func, seen):
    """A stand-in for `func` with its signature that records what it is called with, and the command
    line a torchrun relaunch would rebuild from its context (what zoo dream's ctx is for)."""
    @functools.wraps(func)
    def record(**kwargs):
        seen.update(kwargs, argv=argv_from_context(kwargs.pop("ctx"), {"nproc"}))

    return record


def test_dream_lines_parse_as_typer_parses_them_with_a_context_for_relaunching(files, tmp_path):
    app = typer.Typer()
    dream_cli.register(app)
    command = typer.main.get_command(app).commands["dream"]
    photo = str(files[0])
    cases = [
        [photo],
        [photo, "-o", f"{tmp_path}/x.png", "--size", "64", "--octaves", "1", "--iterations", "1"],
        [photo, photo, "-o", str(tmp_path), "-l", "inception_4c/output", "--layer=prob:goldfish", "--weight", "1",
         "--weight", "-0.5", "--octave-scale", "1.4", "--jitter", "32", "--device", "cpu", "--compile",
         "--quality", "100", "--nproc", "2", "--preset", "classic"],
    ]
    for args in cases:
        want, got = {}, {}
        app2 = typer.Typer()
        app2.command("dream")(_recorder(dream_cli.dream_cmd, want))
        app2.command("other")(lambda: None)
        app2(args=["dream", *args], standalone_mode=False)
        call = quick_call(command, _recorder(dream_cli.dream_cmd, got), "dream", args)
        assert call is not None, args  # the fast path is taken
        call()
        assert got == want, args
        assert got["argv"][-len([a for a in args if a == photo]):] == [photo] * args.count(photo)
    # out of range and unknown choices parse as text: the command's first line refuses them (zoo.options)
    for args, says in (([photo, "--octaves", "0"], "--octaves: must be between 1 and 32, not 0"),
                       ([photo, "--quality", "101"], "--quality: must be between 1 and 100, not 101"),
                       ([photo, "--octave-scale", "1"], "--octave-scale: must be above 1 and at most 4, not 1"),
                       ([photo, "--device", "tpu"], '--device: must be one of cpu, cuda, not "tpu"'),
                       ([photo, "--jitter", "-1"], "--jitter: must be between 0 and 10000, not -1")):
        params = quick_params(command, args)
        with pytest.raises(UsageError, match=re.escape(says)):
            DREAM.from_cli({k: v for k, v in params.items() if k in DREAM.by_name})
    assert quick_params(command, ["-o", "x.png"]) is None  # no input at all: typer's defaults and words


def test_a_dream_imports_no_pydantic_and_out_of_range_options_are_one_line(tmp_path):
    """The fast path is what a user runs: a whole `zoo dream` without typer's pydantic coercion."""
    from PIL import Image
    from skimage import data

    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()).save(photo)
    code = ("import sys; from zoo.cli import main; "
            f"rc = main(['dream', {str(photo)!r}, '-o', {str(tmp_path / 'd.png')!r}, '--size', '48', "
            "'--octaves', '1', '--iterations', '1']); print(rc, 'pydantic' in sys.modules)")
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.stdout.split()[-2:] == ["0", "False"], proc.stdout + proc.stderr
    assert (tmp_path / "d.png").stat().st_size > 0
    bad = subprocess.run([sys.executable, "-m", "zoo.cli", "dream", str(photo), "--octaves", "0"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2 and bad.stderr == "error: --octaves: must be between 1 and 32, not 0\n", bad.stderr
