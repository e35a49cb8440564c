"""The one write path for model cards: `$ZOO_HOME/models.toml` is changed here and nowhere else.

`zoo convert --name`, `zoo train`'s export and local registrations all end in `register_card`,
which checks the name and the table against the schema before anything is written. Sits above
registry (reading cards) and cache (files), so neither imports the other for registration.

Moved here: zoo.registry.register_user_model -> register_card, unregister_user_model -> unregister,
register_converted -> register_converted; zoo.cache.register_local_model -> register_local_model;
zoo.registry.card_table_from_card(card) -> card.to_table().
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo import cache
from zoo.errors import UserError
from zoo.io import file_digest
from zoo.names import validate_name
from zoo.registry import (
    BUILTIN_TOML,
    ModelCard,
    _read_user_tables,
    _write_user_tables,
    parse_card,
    parse_toml,
    user_toml,
)

CAFFE_IMAGENET = {"channel_order": "BGR", "mean": [104.0, 117.0, 123.0], "scale": 1.0, "resize": 256}


def check_new_name(name: str, option: str = "--name") -> str:
    """A name a user may register: valid, and not one of the built-in models."""
    validate_name(name, option)
    if name in parse_toml(BUILTIN_TOML):
        raise UserError(f"{option} {name}: a built-in model has that name; choose another")
    return name


def register_card(name: str, table: Mapping[str, Any]) -> ModelCard:
    """Add or replace NAME in the user's models.toml (name and table checked first).

    File urls may be local: `file:///abs/path/deploy.prototxt` with the file's sha256.
    """
    validate_name(name)
    path = user_toml()
    card = parse_card(name, table, str(path))
    tables = _read_user_tables(path)
    tables[name] = dict(table)
    _write_user_tables(path, tables)
    return card


def unregister(name: str) -> bool:
    """Drop NAME from the user's models.toml; True if it was there."""
    validate_name(name)
    path = user_toml()
    tables = _read_user_tables(path)
    if name not in tables:
        return False
    del tables[name]
    _write_user_tables(path, tables)
    return True


def _local_file(path: Path) -> dict[str, str]:
    path = Path(path)
    return {"url": path.resolve().as_uri(), "filename": path.name, "sha256": file_digest(path, "sha256")}


def register_local_model(name: str, prototxt: Path, weights: Path, *, base: ModelCard | None = None,
                         mean_file: Path | None = None, **fields: object) -> ModelCard:
    """Register local Caffe files as model NAME and cache them.

    The entry points at the files (file:// URLs with their sha256) and takes preprocessing, labels
    and dream blobs from `base` (a card of the model it was made from), overridden by `fields`.
    """
    check_new_name(name)
    table: dict[str, Any] = base.to_table() if base is not None else {
        "title": name, "task": "classify", "license": "unknown (registered locally)", "origin": "local",
        "input_size": [224, 224], "num_classes": 1000, "output": "prob", "default_blob": "prob",
        "labels": {"names": []}, **CAFFE_IMAGENET,
    }
    table.pop("builtin", None)
    table["origin"] = f"registered locally from {Path(prototxt).resolve().parent}"
    table["files"] = {"prototxt": _local_file(prototxt), "weights": _local_file(weights)}
    table.update(fields)
    if mean_file is not None:
        table.pop("mean", None)
        table["files"]["mean"] = _local_file(mean_file)
    card = register_card(name, table)
    cache.remove_model(name)  # a re-registration replaces what was cached under this name
    cache.ensure_model(card, say=lambda msg: None)
    return card


def _graph_fields(graph: Any) -> dict[str, object]:
    """Card fields a converted graph can tell: input size, output, classes, dreamable blobs."""
    (_, (n, c, h, w)), *_ = graph.inputs.items()
    shapes = graph.shapes()
    output = graph.outputs[-1]
    out_shape = shapes[output]
    from zoo.convert.report import default_dream_blob, dreamable_blobs

    picked = dreamable_blobs(graph) or [b for b in graph.blob_names if b not in graph.inputs][-1:]
    blobs = [{"name": b, "shape": list(shapes[b][1:]), "produces": "picked by zoo convert (a block output)"}
             for b in picked]
    return {
        "input_size": [int(h), int(w)], "output": output, "num_classes": int(out_shape[1]),
        "dream_blobs": blobs, "default_blob": default_dream_blob(picked),
    }


def register_converted(name: str, *, prototxt: Path, weights: Path | None, mean: Path | None = None,
                       graph: Any = None, preprocess: dict | None = None, labels: list[str] | None = None) -> Path:
    """`zoo convert --name NAME`: register the Caffe files as a user model; returns the user models.toml.

    `preprocess` overrides Caffe's ImageNet convention (channel_order, mean, scale, resize) with
    what the net was trained on; `labels` names the classes.
    """
    check_new_name(name)
    if weights is None:
        raise UserError(f"--name {name}: registering a model needs its weights (--weights FILE.caffemodel)")
    if graph is None:
        from zoo import convert

        graph = convert.load_net(str(prototxt), str(weights))
    fields: dict[str, object] = {
        "title": f"{graph.name or name} (converted)", "task": "classify", "license": "unknown (converted locally)",
        "notes": "Registered by zoo convert; preprocessing as given to it, else Caffe's ImageNet convention "
                 "(BGR, mean pixel 104/117/123) or the mean file.",
        "labels": {"names": list(labels or [])}, **CAFFE_IMAGENET, **_graph_fields(graph),
    }
    fields.update({k: v for k, v in (preprocess or {}).items() if v is not None})
    register_local_model(name, Path(prototxt), Path(weights), mean_file=mean, **fields)
    return user_toml()
