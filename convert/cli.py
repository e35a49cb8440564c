"""`zoo convert` and `zoo info`: thin commands over the converter."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

# Plain prints, not rich: paths and layer names are not markup, and rich's import is a tenth of a
# whole `zoo convert` (only `zoo info`'s table needs it).


def say_notes(graph) -> None:
    """What the reader changed (renamed duplicate layers...), said once, on stderr."""
    for note in graph.notes:
        print(f"note: {note}", file=sys.stderr)


class Format(str, Enum):
    onnx = "onnx"
    caffe = "caffe"
    pt = "pt"
    safetensors = "safetensors"


DEFAULT_FORMATS = [Format.onnx, Format.safetensors]  # neither imports torch or the onnx package


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not N,C,H,W (comma-separated integers)") from None
    if len(dims) != 4 or min(dims) < 1:
        raise typer.BadParameter(f"{text!r} must be four positive integers N,C,H,W")
    return dims


def parse_floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise typer.BadParameter(f"{option} {text!r}: expected comma-separated numbers") from None


def parse_order(text: str | None) -> str | None:
    if text is not None and text.upper() not in ("BGR", "RGB"):
        raise typer.BadParameter(f"--channel-order {text!r}: expected BGR or RGB")
    return text.upper() if text else None


def read_labels(path: Path) -> list[str]:
    """Class names, one per line; a file that is not UTF-8 text is a one-line error naming it."""
    from zoo.errors import UserError

    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: --labels is not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read --labels ({e.strerror or e})") from None


def convert_cmd(
    prototxt: Annotated[Path, typer.Argument(help="deploy.prototxt or train_val.prototxt (V1 or V2)",
                                             exists=True, dir_okay=False)],
    weights: Annotated[Path | None, typer.Option("--weights", "-w", help=".caffemodel or .caffemodel.h5",
                                                 exists=True, dir_okay=False)] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="output path without suffix, or a folder")] = None,
    formats: Annotated[list[Format] | None, typer.Option("--format", "-f",
                                                         help="repeatable; default: onnx and safetensors")] = None,
    input_shape: Annotated[str | None, typer.Option("--input-shape", help="N,C,H,W, overrides the net's")] = None,
    mean: Annotated[Path | None, typer.Option("--mean", help="mean.binaryproto", exists=True, dir_okay=False)] = None,
    name: Annotated[str | None, typer.Option("--name", help="also register the result in your zoo as NAME")] = None,
    mean_pixel: Annotated[str | None, typer.Option("--mean-pixel",
                                                   help="with --name: per-channel mean, e.g. 104,117,123")] = None,
    channel_order: Annotated[str | None, typer.Option("--channel-order",
                                                      help="with --name: BGR (Caffe) or RGB")] = None,
    scale: Annotated[float | None, typer.Option("--scale", help="with --name: multiplier after the mean")] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="with --name: class names, one per line",
                                                exists=True, dir_okay=False)] = None,
    input_size: Annotated[str | None, typer.Option("--input-size", help="with --name: HxW pictures are fitted to "
                                                   "(default: the net's input)")] = None,
    resize: Annotated[str | None, typer.Option("--resize", help="with --name: short side N then centre crop "
                                               "(default 256), or 'input': straight to the input size")] = None,
    transpose: Annotated[bool | None, typer.Option("--transpose/--no-transpose", help="with --name: the net was "
                                                   "trained on x/y-swapped pictures (MTCNN's)")] = None,
    test_picture: Annotated[Path | None, typer.Option("--test-picture", help="with --name and --labels: say what "
                                                      "the brain predicts on this picture", exists=True,
                                                      dir_okay=False)] = None,
) -> None:
    """Convert a Caffe net to ONNX, PyTorch weights (.safetensors, or .pt), or clean Caffe files."""
    from zoo.convert.convert_job import run_convert

    from zoo import convert

    shape = parse_shape(input_shape)
    preprocess = card_fields(mean_pixel, scale, channel_order, input_size, resize, transpose)
    names = read_labels(labels) if labels else None
    if name:
        from zoo.register import check_new_name

        check_new_name(name)  # before anything is written
    graph = convert.load_net(prototxt, weights, input_shape=shape, mean=mean)
    say_notes(graph)
    written = run_convert(graph, prototxt, output, [f.value for f in (formats or DEFAULT_FORMATS)],
                          weights=weights)
    if name:
        from zoo.register import register_converted

        try:
            written.append(register_converted(name, prototxt=prototxt, weights=weights, mean=mean, graph=graph,
                                              preprocess=preprocess, labels=names,
                                              say=lambda m: print(f"note: {m}", file=sys.stderr)))
        except BaseException:  # a failed --name leaves nothing behind
            for path in written:
                path.unlink(missing_ok=True)
            raise
    for path in written:
        print(f"wrote {path}")
    if name:
        say_check(name, names, test_picture)


def card_fields(mean_pixel, scale, channel_order, input_size, resize, transpose) -> dict:  # noqa: ANN001
    """The preprocessing fields typed on `zoo convert --name` (None: not given), checked as usage."""
    from zoo.card_preprocess import parse_input_size, parse_resize

    try:
        return {"mean": parse_floats(mean_pixel, "--mean-pixel"), "scale": scale,
                "channel_order": parse_order(channel_order), "transpose": transpose,
                "input_size": parse_input_size(input_size) if input_size else None,
                "resize": parse_resize(resize) if resize is not None else None}
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def say_check(name: str, labels: list[str] | None, picture: Path | None) -> None:
    """One line: what the newly registered brain predicts on a test picture (needs its labels)."""
    if not labels:
        return
    if picture is None:
        print(f"tip: --test-picture FILE says what {name} predicts on it (a check of its preprocessing)")
        return
    from zoo import api

    top = api.predict(name, picture)
    print(f"{name} on {picture.name}: {top.label} ({top.prob:.4f})")


def info_cmd(
    target: Annotated[str, typer.Argument(help="a prototxt, the name of a zoo model, or a file zoo made (what "
                                                "made it)")],
    weights: Annotated[Path | None, typer.Option("--weights", "-w", exists=True, dir_okay=False)] = None,
    input_shape: Annotated[str | None, typer.Option("--input-shape", help="N,C,H,W")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """Per-blob table (type, shape at the deploy size, parameters, multiply-adds), a model card, or what
    made a picture, sound, SVG or video zoo wrote."""
    from zoo.convert.report import human, summary

    from zoo import convert
    from zoo.cli_output import print_json, print_table

    path = Path(target)
    if not path.is_file():
        from zoo.cli_zoo import print_model_card

        print_model_card(target, as_json)  # a model name, or a one-line error for a folder or missing file
        return
    from zoo.dream import records

    if records.is_output(path):  # a picture, sound, SVG or video: the record it carries
        found = records.read(path)
        if as_json:
            print_json({"path": str(path), "kind": found.kind, "command": found.command, "again": found.again,
                        "record": found.data})
            return
        print(f"{path.name}: {found.summary}")
        if found.command != found.again:  # a still: the command that made it, on its input
            print(f"made by: {found.command}")
        print(f"again: {found.again}")
        return
    graph = convert.load_net(path, weights, input_shape=parse_shape(input_shape))
    say_notes(graph)
    rows = summary(graph)
    total_p, total_m = sum(r.params for r in rows), sum(r.macs for r in rows)
    if as_json:
        print_json({"name": graph.name, "path": str(path), "inputs": {k: list(v) for k, v in graph.inputs.items()},
                    "outputs": list(graph.outputs), "any_input_size": graph.spatially_dynamic(),
                    "layers": len(graph.layers), "params": total_p, "mult_adds": total_m,
                    "blobs": [{"blob": r.blob, "type": r.type, "shape": list(r.shape), "params": r.params,
                               "mult_adds": r.macs} for r in rows]})
        return
    print_table(("blob", "layer type", "shape", "params", "mult-adds"),
                [(r.blob, r.type, "×".join(map(str, r.shape)), human(r.params) if r.params else "",
                  human(r.macs) if r.macs else "") for r in rows],
                title=f"{graph.name}  ({path})", right=("shape", "params", "mult-adds"),
                footer=("total", f"{len(graph.layers)} layers", "", human(total_p), human(total_m)))
    print(f"inputs: {', '.join(f'{k} {chr(215).join(map(str, v))}' for k, v in graph.inputs.items())}   "
          f"outputs: {', '.join(graph.outputs)}   any input size: {'yes' if graph.spatially_dynamic() else 'no'}")


def register(app: typer.Typer) -> None:
    app.command("convert")(convert_cmd)
    app.command("info")(info_cmd)
