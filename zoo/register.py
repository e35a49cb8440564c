"""The one write path for model cards: `$ZOO_HOME/models.toml` is changed here and nowhere else.

`zoo convert --name`, `zoo train`'s export and local registrations all end in `register_card`,
which checks the name and the table against the schema before anything is written. Sits above
registry (reading cards) and cache (files), so neither imports the other for registration.

The built-in brain's entry in the shipped models.toml is written here too (`builtin_card_table`,
`write_builtin_card`; scripts/builtin_card.py), from zoo.efficientnet's facts and the files its build
writes, and a test checks that the shipped entry is exactly that.

Moved here: zoo.registry.register_user_model -> register_card, unregister_user_model -> unregister,
register_converted -> register_converted; zoo.cache.register_local_model -> register_local_model;
zoo.registry.card_table_from_card(card) -> card.to_table().
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo import cache
from zoo.errors import UserError
from zoo.io import file_digest, write_text_atomic
from zoo.names import validate_name
from zoo.registry import (
    BUILTIN_TOML,
    ModelCard,
    _read_user_tables,
    _write_user_tables,
    dump_models,
    load_registry,
    parse_card,
    parse_toml,
    repair_entry,
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


def remove_model(name: str) -> bool:
    """`zoo remove NAME`: delete a known model's cached files and its user entry, if any; True if
    there was a user entry. A model with neither is a one-line error (nothing to remove).
    A models.toml broken inside NAME's entry is repaired by dropping that entry."""
    validate_name(name)
    if repair_entry(name):
        cache.remove_model(name)
        return True
    load_registry().get(name)  # a valid, known name (else the closest names), before anything is deleted
    removed = cache.remove_model(name)
    unregistered = unregister(name)
    if not removed and not unregistered:
        raise UserError(f"model {name} is not cached; nothing to remove")
    return unregistered


def local_file(path: Path) -> dict[str, str]:
    """A card's file table for a file on this machine: its file:// url, name and sha256."""
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
    table["files"] = {"prototxt": local_file(prototxt), "weights": local_file(weights)}
    table.update(fields)
    if mean_file is not None:
        table.pop("mean", None)
        table["files"]["mean"] = local_file(mean_file)
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


# --- the built-in brain's entry in the shipped models.toml ---------------------------------------

BUILTIN = "efficientnet_lite0"


def builtin_card_table(folder: Path) -> dict[str, Any]:
    """The built-in efficientnet_lite0's card table: zoo.efficientnet's facts (title, preprocessing,
    labels, what each blob paints), the input size, classes and blob shapes of its graph, and the
    sha256 of the files its build writes into `folder`."""
    from zoo import efficientnet as eff

    graph, proto, model = eff.build_files(Path(folder))
    (_, (_, _, h, w)), *_ = graph.inputs.items()
    shapes = graph.shapes()
    output = graph.outputs[-1]
    facts = eff.CARD
    return {
        **{k: facts[k] for k in ("title", "task", "license", "origin", "notes")},
        "builtin": BUILTIN,
        "input_size": [int(h), int(w)],
        **{k: facts[k] for k in ("channel_order", "scale", "mean", "resize")},
        "num_classes": int(shapes[output][1]),
        "output": output,
        "default_blob": facts["default_blob"],
        "labels": dict(facts["labels"]),
        "files": {
            "prototxt": {"filename": proto.name, "sha256": file_digest(proto, "sha256"),
                         "source": eff.FILE_SOURCES["prototxt"]},
            "weights": {"filename": model.name, "sha256": file_digest(model, "sha256"),
                        "size": model.stat().st_size, "source": eff.FILE_SOURCES["weights"]},
        },
        "dream_blobs": [{"name": b, "shape": [int(d) for d in shapes[b][1:]], "produces": what}
                        for b, what in eff.DREAM_BLOBS],
    }


def entry_span(text: str, name: str) -> tuple[int, int]:
    """Where [models.NAME] and its sub-tables stand in a models.toml text (character offsets, the
    blank lines after it left out); the entry ends at the next other table or comment line."""
    lines = text.splitlines(keepends=True)
    head = f"[models.{name}]"
    starts = [i for i, line in enumerate(lines) if line.rstrip() == head]
    if len(starts) != 1:
        raise UserError(f"models.toml: expected one {head} table, found {len(starts)}")
    own = (f"[models.{name}.", f"[[models.{name}.")
    end = starts[0] + 1
    while end < len(lines) and not (lines[end].startswith(("[", "#")) and not lines[end].startswith(own)):
        end += 1
    while lines[end - 1].strip() == "":
        end -= 1
    offset = sum(len(line) for line in lines[: starts[0]])
    return offset, offset + sum(len(line) for line in lines[starts[0]:end])


def with_builtin_entry(text: str, table: Mapping[str, Any], name: str = BUILTIN) -> str:
    """`text` (a models.toml) with NAME's entry replaced by `table`, in dump_models' layout."""
    parse_card(name, table, "the built-in card")  # never write an entry the registry would refuse
    start, end = entry_span(text, name)
    return text[:start] + dump_models({name: table}).rstrip("\n") + "\n" + text[end:]


def write_builtin_card(toml: Path = BUILTIN_TOML) -> bool:
    """Rewrite the built-in brain's entry of the shipped models.toml from a fresh build; True if it changed."""
    path = Path(toml).resolve()  # zoo/models.toml is a link to the repository's file: write the file
    text = path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="zoo-builtin-") as folder:
        new = with_builtin_entry(text, builtin_card_table(Path(folder)))
    if new != text:
        write_text_atomic(path, new)
    return new != text
