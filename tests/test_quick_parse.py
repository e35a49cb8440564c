"""`zoo convert` and `zoo info` parsed without typer: the same parameters typer itself gives, or typer parses."""

from __future__ import annotations

import functools

import pytest
import typer
from zoo.convert import cli as convert_cli

from tests.conftest import MODELS
from zoo.quick_parse import quick_params

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

