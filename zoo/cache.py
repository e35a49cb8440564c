"""The model cache: `$ZOO_HOME/models/<name>/` holds a model's verified files and its ONNX.

`ensure_model` is the one entry point commands use: it verifies what is cached (a corrupt file is
fetched again, never used), fetches what is missing (or, offline, says the exact `zoo fetch`
command), builds built-in models, and pins the digest of files upstream publishes no checksum for.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from zoo.errors import UserError
from zoo.fetch import FetchOptions, fetch_file, file_digest, file_lock, matches, mirror_sources
from zoo.registry import Checksum, FileSpec, ModelCard, zoo_home

PINS = ".pins.json"
ONNX_NAME = "model.onnx"
_err = Console(stderr=True, highlight=False, soft_wrap=True)


class NotCachedError(UserError):
    """A model is needed offline but is not in the cache."""


def models_dir() -> Path:
    return zoo_home() / "models"


def model_dir(name: str) -> Path:
    return models_dir() / name


def file_path(card: ModelCard, role: str) -> Path:
    return model_dir(card.name) / card.files[role].filename


def onnx_path(card: ModelCard) -> Path:
    return model_dir(card.name) / ONNX_NAME


def needed_roles(card: ModelCard) -> list[str]:
    """Roles that must be on disk to use the model (an archive is only a way to get its members)."""
    return [role for role, spec in card.files.items() if role != "archive" or not _members(card, role)]


def _members(card: ModelCard, archive_role: str) -> list[FileSpec]:
    return [spec for spec in card.files.values() if spec.archive == archive_role]


# --- pins: digests of files without a published checksum ----------------------------------------


def _read_pins(name: str) -> dict[str, str]:
    path = model_dir(name) / PINS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_pins(name: str, pins: dict[str, str]) -> None:
    path = model_dir(name) / PINS
    tmp = path.with_name(f"{PINS}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(pins, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def expected_checksum(card: ModelCard, role: str) -> Checksum | None:
    """The published checksum, else the sha256 pinned when the file was first fetched."""
    spec = card.files[role]
    if spec.checksum is not None:
        return spec.checksum
    pinned = _read_pins(card.name).get(spec.filename)
    return Checksum("sha256", pinned) if pinned else None


def _pin(card: ModelCard, role: str) -> None:
    spec = card.files[role]
    if spec.checksum is not None:
        return
    pins = _read_pins(card.name)
    if spec.filename not in pins:
        pins[spec.filename] = file_digest(file_path(card, role), "sha256")
        _write_pins(card.name, pins)


# --- status --------------------------------------------------------------------------------------


def is_cached(card: ModelCard) -> bool:
    """All needed files are present (cheap: no hashing; ensure_model verifies)."""
    return bool(card.files) and all(file_path(card, role).is_file() for role in needed_roles(card))


def corrupt_roles(card: ModelCard) -> list[str]:
    """Roles whose cached file no longer matches its checksum (missing files are not listed)."""
    bad = []
    for role in needed_roles(card):
        path, expected = file_path(card, role), expected_checksum(card, role)
        if path.is_file() and expected is not None and not matches(path, expected):
            bad.append(role)
    return bad


def cached_size(card: ModelCard) -> int:
    d = model_dir(card.name)
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file()) if d.is_dir() else 0


# --- getting files -------------------------------------------------------------------------------


def _sources(card: ModelCard, spec: FileSpec) -> list[str]:
    return mirror_sources(card.name, spec.filename) + ([spec.url] if spec.url else [])


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy one regular file out of a tar archive (never extractall: no paths from the archive)."""
    try:
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
            src = tar.extractfile(info) if info.isfile() else None
            if src is None:
                raise UserError(f"{archive}: {member} is not a regular file")
            tmp = dest.with_name(f"{dest.name}.{os.getpid()}.tmp")
            with src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out)
            os.replace(tmp, dest)
    except KeyError:
        raise UserError(f"{archive}: has no member {member}") from None
    except tarfile.TarError as e:
        raise UserError(f"{archive}: not a readable archive ({e})") from None


def _fetch_role(card: ModelCard, role: str, options: FetchOptions | None) -> None:
    spec = card.files[role]
    dest = file_path(card, role)
    if spec.archive:
        archive_spec = card.files[spec.archive]
        archive = file_path(card, spec.archive)
        fetch_file(_sources(card, archive_spec), archive, archive_spec.checksum,
                   label=f"{card.name}/{archive_spec.filename}", options=options)
        with file_lock(dest):
            expected = expected_checksum(card, role)
            if not (dest.is_file() and (expected is None or matches(dest, expected))):
                _extract_member(archive, spec.member or "", dest)
        _pin(card, role)
        return
    fetch_file(_sources(card, spec), dest, expected_checksum(card, role),
               label=f"{card.name}/{spec.filename}", options=options)
    _pin(card, role)


def ensure_files(card: ModelCard, roles: list[str], options: FetchOptions | None = None) -> dict[str, Path]:
    """Just these files of a model (scratch training needs the prototxt, not the weights)."""
    for role in roles:
        if not file_path(card, role).is_file():
            _fetch_role(card, role, options)
    return {r: file_path(card, r) for r in roles}


def _drop_archives(card: ModelCard) -> None:
    for role in card.files:
        members = _members(card, role)
        if members and all(file_path(card, m.role).is_file() for m in members):
            with contextlib.suppress(FileNotFoundError):
                file_path(card, role).unlink()


Builder = Callable[[Path], None]


def builders() -> dict[str, Builder]:
    """Built-in models made on this machine instead of downloaded."""
    from zoo import efficientnet

    return {"efficientnet_lite0": efficientnet.build_into}


def _ensure_builtin(card: ModelCard, say: Callable[[str], None]) -> None:
    build = builders().get(card.builtin or "")
    if build is None:
        raise UserError(f"model {card.name}: unknown built-in {card.builtin!r}")
    d = model_dir(card.name)
    with file_lock(d / "build"):
        if is_cached(card) and not corrupt_roles(card):
            return
        say(f"building {card.name} from the installed package (first use, no download)")
        build(d)
        bad = corrupt_roles(card)
        if bad:
            # Another numeric stack could round differently: keep the files, but say so.
            say(f"note: {card.name} built files differ from the recorded checksums ({', '.join(bad)})")


def ensure_model(
    card: ModelCard,
    *,
    offline: bool = False,
    say: Callable[[str], None] | None = None,
    options: FetchOptions | None = None,
) -> dict[str, Path]:
    """Paths of the model's verified files (role -> path), fetching or building what is missing."""
    say = say or (lambda msg: _err.print(msg, markup=False))
    model_dir(card.name).mkdir(parents=True, exist_ok=True)
    if card.builtin:
        _ensure_builtin(card, say)
        return {role: file_path(card, role) for role in card.files}
    bad = corrupt_roles(card)
    for role in bad:
        say(f"{card.name}: cached {card.files[role].filename} does not match its checksum; fetching it again")
        file_path(card, role).unlink()
    missing = [role for role in needed_roles(card) if not file_path(card, role).is_file()]
    if missing:
        if offline:
            raise NotCachedError(f"model {card.name} is not cached (offline); run: zoo fetch {card.name}")
        say(f"fetching {card.name} (not cached yet)")
        for role in missing:
            try:
                _fetch_role(card, role, options)
            except UserError as e:
                if "cannot connect" not in str(e):
                    raise
                raise type(e)(f"{e} (no network? set ZOO_MIRROR, or use --model efficientnet_lite0, which needs "
                              "no download)") from None
        _drop_archives(card)
    return {role: file_path(card, role) for role in needed_roles(card)}


def ensure_onnx(card: ModelCard, paths: dict[str, Path]) -> Path:
    """The converted ONNX beside the Caffe files, built once (and again if the Caffe files change)."""
    dest = onnx_path(card)
    sources = [paths["prototxt"], paths["weights"]]
    with file_lock(dest):
        if dest.is_file() and all(dest.stat().st_mtime >= p.stat().st_mtime for p in sources):
            return dest
        from zoo import convert

        graph = convert.load_net(str(paths["prototxt"]), str(paths["weights"]))
        tmp = dest.with_name(f"{dest.stem}.{os.getpid()}.tmp.onnx")
        try:
            convert.write_onnx(graph, str(tmp))
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return dest


def remove_model(name: str) -> bool:
    """Delete a model's cache directory; True if there was one."""
    d = model_dir(name)
    if not d.is_dir():
        return False
    shutil.rmtree(d)
    return True


def register_local_model(
    name: str,
    prototxt: Path,
    weights: Path,
    *,
    base: ModelCard | None = None,
    **fields: object,
) -> ModelCard:
    """Register local Caffe files as model NAME in the user's models.toml and cache them.

    For `zoo convert --name` and `zoo train`: the entry points at the files (file:// URLs with their
    sha256) and takes preprocessing, labels and dream blobs from `base` (a card of the model it was
    made from), overridden by `fields` (any models.toml key).
    """
    from zoo.registry import card_table_from_card, register_user_model

    table: dict[str, object] = card_table_from_card(base) if base is not None else {
        "title": name, "task": "classify", "license": "unknown (registered locally)", "origin": "local",
        "input_size": [224, 224], "channel_order": "BGR", "mean": [104.0, 117.0, 123.0], "num_classes": 1000,
        "output": "prob", "default_blob": "prob", "labels": {"names": []}, "dream_blobs": [],
    }
    table.pop("builtin", None)
    table["origin"] = f"registered locally from {Path(prototxt).resolve().parent}"
    table["files"] = {
        role: {"url": Path(p).resolve().as_uri(), "filename": Path(p).name,
               "sha256": file_digest(Path(p), "sha256")}
        for role, p in (("prototxt", prototxt), ("weights", weights))
    }
    table.update(fields)
    card = register_user_model(name, table)
    remove_model(name)  # a re-registration replaces what was cached under this name
    ensure_model(card, say=lambda msg: None)
    return card


def _graph_fields(graph) -> dict[str, object]:  # noqa: ANN001 - convert.Graph, imported lazily
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
                       graph=None, preprocess: dict | None = None,  # noqa: ANN001 - convert.Graph
                       labels: list[str] | None = None) -> Path:
    """`zoo convert --name NAME`: register the Caffe files as a user model; returns the user models.toml.

    `preprocess` overrides Caffe's ImageNet convention (channel_order, mean, scale, resize) with
    what the net was trained on; `labels` names the classes.
    """
    from zoo import convert
    from zoo.registry import BUILTIN_TOML, parse_toml, user_toml

    if weights is None:
        raise UserError(f"--name {name}: registering a model needs its weights (--weights FILE.caffemodel)")
    if name in parse_toml(BUILTIN_TOML):
        raise UserError(f"--name {name}: a built-in model has that name; choose another")
    graph = graph if graph is not None else convert.load_net(str(prototxt), str(weights))
    fields: dict[str, object] = {
        "title": f"{graph.name or name} (converted)", "task": "classify", "license": "unknown (converted locally)",
        "channel_order": "BGR", "scale": 1.0, "resize": 256,
        "notes": "Registered by zoo convert; preprocessing as given to it, else Caffe's ImageNet convention "
                 "(BGR, mean pixel 104/117/123) or the mean file.",
        "labels": {"names": list(labels or [])}, **_graph_fields(graph),
    }
    if mean is None:
        fields["mean"] = [104.0, 117.0, 123.0]
    fields.update({k: v for k, v in (preprocess or {}).items() if v is not None})
    card = register_local_model(name, Path(prototxt), Path(weights), **fields)
    if mean is not None:
        from zoo.registry import card_table_from_card, register_user_model

        table = card_table_from_card(card)
        table.pop("mean", None)
        table["files"]["mean"] = {"url": Path(mean).resolve().as_uri(), "filename": Path(mean).name,
                                  "sha256": file_digest(Path(mean), "sha256")}
        ensure_model(register_user_model(name, table), say=lambda msg: None)
    return user_toml()
