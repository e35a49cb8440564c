"""A registered brain's preprocessing fields: parsed from what the user typed, else what the prototxt says.

A brain sees what its authors fed it only if its card says so: the input size, how a picture is
brought to it (short side then centre crop, or straight to the input size), MTCNN's transposed
input, the mean, the scale and the channel order. `zoo convert --name` and the studio's import both
build the card from `prototxt_defaults` overridden by the user's fields; nothing else guesses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# The card fields that say how a picture becomes the net's input (zoo.registry.ModelCard, zoo.preprocess).
FIELDS = ("input_size", "resize", "transpose", "mean", "scale", "channel_order")
RESIZE_TO_INPUT = ("input", "0")


def parse_resize(text: str, option: str = "--resize") -> int:
    """`input` (or 0): scale the picture straight to the input size; N: short side N, then centre crop."""
    if text.strip().lower() in RESIZE_TO_INPUT:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected 'input' or a short side in pixels") from None
    if value < 1:
        raise ValueError(f"{option} {text!r}: the short side must be positive (or 'input')")
    return value


def parse_input_size(text: str, option: str = "--input-size") -> list[int]:
    """`48` or `48x48` (height x width) -> [H, W]."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{option} {text!r}: expected H or HxW in pixels") from None
    if len(dims) not in (1, 2) or min(dims) < 1:
        raise ValueError(f"{option} {text!r}: expected one or two positive sizes (HxW)")
    return dims * 2 if len(dims) == 1 else dims


def _mean_values(values: list[float]) -> list[float] | None:
    if len(values) == 1:
        return [float(values[0])] * 3
    return [float(v) for v in values] if len(values) == 3 else None


def _data_layer(net):
    """The train_val's data layer Caffe would use at TEST time (else any data layer), or None."""
    from zoo.convert.build import in_test_phase
    from zoo.convert.layers import DATA_TYPES

    data = [p for p in net.layer if p.type in DATA_TYPES and not p.bottom]
    tested = [p for p in data if in_test_phase(p)]
    return (tested or data or [None])[0]


def transform_fields(layer) -> tuple[dict[str, Any], list[str]]:
    """Card fields a data layer's transform_param (and image_data_param) states, and notes on what it
    names but cannot give (a mean file is a path on its authors' machine). Its crop_size is the
    graph's input size already (zoo.convert.build), so --input-shape still wins over it."""
    fields: dict[str, Any] = {}
    notes: list[str] = []
    t = layer.transform_param
    if t.HasField("scale"):
        fields["scale"] = float(t.scale)
    if t.mean_value:
        mean = _mean_values(list(t.mean_value))
        if mean is not None:
            fields["mean"] = mean
    if t.mean_file:
        notes.append(f"the prototxt's {layer.name!r} subtracts mean file {Path(t.mean_file).name!r}; "
                     "give it with --mean")
    q = layer.image_data_param
    if layer.HasField("image_data_param") and q.new_height and q.new_width:
        fields["resize"] = int(min(q.new_height, q.new_width))
    return fields, notes


def prototxt_defaults(prototxt: Path) -> tuple[dict[str, Any], list[str]]:
    """What the prototxt says about preprocessing: a train_val's transform_param (the input size of an
    Input layer or input_dim comes with the graph). Returns (card fields, notes)."""
    from zoo.convert.prototxt import read_prototxt
    from zoo.convert.upgrade import upgrade_net

    net = upgrade_net(read_prototxt(prototxt), str(prototxt))
    layer = _data_layer(net)
    if layer is None:
        return {}, []
    return transform_fields(layer)


def describe(fields: dict[str, Any]) -> str:
    """One line naming the preprocessing fields given, in FIELDS order."""
    return ", ".join(f"{k} {fields[k]}" for k in FIELDS if k in fields)
