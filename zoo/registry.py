"""Model cards: models.toml (built-in, then the user's) parsed into frozen dataclasses.

A card carries everything needed to use a model without knowing it: files with checksums,
preprocessing, labels and the blobs worth dreaming on. Unknown keys are errors, so a typo in a
user's models.toml is reported instead of silently ignored.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The repo root's models.toml; zoo/models.toml links to it so that wheels carry it as package data.
BUILTIN_TOML = Path(__file__).parent / "models.toml"
DATA_DIR = Path(__file__).resolve().parent / "data"
CHECKSUM_KINDS = ("sha256", "sha1", "md5", "git_blob")
FILE_ROLES = ("prototxt", "weights", "mean", "labels", "archive")
LABEL_FORMATS = ("synset", "plain", "places", "places205_csv")


class RegistryError(UserError):
    """A models.toml that does not follow the schema, or a model name that is not known."""


@dataclass(frozen=True)
class Checksum:
    kind: str  # one of CHECKSUM_KINDS
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.kind} {self.hexdigest}"


@dataclass(frozen=True)
class FileSpec:
    role: str
    filename: str
    url: str | None = None
    checksum: Checksum | None = None
    archive: str | None = None  # role of the archive file this one is taken from
    member: str | None = None
    unverified: str | None = None  # why no checksum is known (pinned on first download)
    source: str | None = None
    size: int | None = None  # bytes, where upstream states it (summed by `zoo list`)


@dataclass(frozen=True)
class DreamBlob:
    name: str
    shape: tuple[int, ...]
    produces: str


@dataclass(frozen=True)
class Labels:
    builtin: str | None = None  # a file in zoo/data
    file: str | None = None  # a file role of the model
    names: tuple[str, ...] | None = None
    format: str = "plain"
    source: str | None = None


@dataclass(frozen=True)
class ModelCard:
    name: str
    title: str
    task: str
    license: str
    origin: str
    input_size: tuple[int, int]
    channel_order: str
    scale: float
    num_classes: int
    output: str
    default_blob: str
    labels: Labels
    files: Mapping[str, FileSpec]
    dream_blobs: tuple[DreamBlob, ...] = ()
    mean: tuple[float, float, float] | None = None
    resize: int = 256
    transpose: bool = False
    builtin: str | None = None
    notes: str = ""
    defined_in: str = ""

    @property
    def mean_from_file(self) -> bool:
        return self.mean is None and "mean" in self.files


# --- parsing -------------------------------------------------------------------------------------


def _take(table: Mapping[str, Any], allowed: dict[str, type | tuple[type, ...]], where: str) -> dict[str, Any]:
    """Check keys and value types of one TOML table; unknown keys name the key and where it is."""
    for key, value in table.items():
        if key not in allowed:
            raise RegistryError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[key]) or (isinstance(value, bool) and allowed[key] in (int, float)):
            raise RegistryError(f"{where}: key {key!r} has the wrong type ({type(value).__name__})")
    return dict(table)


def _file_spec(role: str, table: Mapping[str, Any], where: str) -> FileSpec:
    allowed: dict[str, Any] = {k: str for k in ("url", "filename", "archive", "member", "unverified", "source")}
    allowed.update({k: str for k in CHECKSUM_KINDS}, size=int)
    t = _take(table, allowed, where)
    if t.get("size", 0) < 0:
        raise RegistryError(f"{where}: size must be a number of bytes (0 or more)")
    if role not in FILE_ROLES:
        raise RegistryError(f"{where}: unknown file role {role!r} (known: {', '.join(FILE_ROLES)})")
    sums = [Checksum(k, t[k].lower()) for k in CHECKSUM_KINDS if k in t]
    if len(sums) > 1:
        raise RegistryError(f"{where}: give one checksum, not {len(sums)}")
    if ("archive" in t) != ("member" in t):
        raise RegistryError(f"{where}: 'archive' and 'member' go together")
    if "archive" not in t and not sums and "unverified" not in t:
        raise RegistryError(f"{where}: no checksum (sha256, sha1, md5 or git_blob; or unverified = \"why\")")
    name = t.get("filename") or Path(t.get("member") or t.get("url") or "").name
    if not name or name in (".", ".."):
        raise RegistryError(f"{where}: no file name (give url, member or filename)")
    return FileSpec(
        role=role,
        filename=name,
        url=t.get("url"),
        checksum=sums[0] if sums else None,
        archive=t.get("archive"),
        member=t.get("member"),
        unverified=t.get("unverified"),
        source=t.get("source"),
        size=t.get("size"),
    )


def _labels(table: Mapping[str, Any], where: str) -> Labels:
    t = _take(table, {"builtin": str, "file": str, "names": list, "format": str, "source": str}, where)
    given = [k for k in ("builtin", "file", "names") if k in t]
    if len(given) != 1:
        raise RegistryError(f"{where}: give exactly one of builtin, file, names")
    fmt = t.get("format", "plain")
    if fmt not in LABEL_FORMATS:
        raise RegistryError(f"{where}: unknown label format {fmt!r} (known: {', '.join(LABEL_FORMATS)})")
    names = tuple(str(n) for n in t["names"]) if "names" in t else None
    return Labels(builtin=t.get("builtin"), file=t.get("file"), names=names, format=fmt, source=t.get("source"))


def _dream_blob(table: Mapping[str, Any], where: str) -> DreamBlob:
    t = _take(table, {"name": str, "shape": list, "produces": str}, where)
    for key in ("name", "shape", "produces"):
        if key not in t:
            raise RegistryError(f"{where}: missing key {key!r}")
    return DreamBlob(t["name"], tuple(int(v) for v in t["shape"]), t["produces"])


_CARD_KEYS: dict[str, Any] = {
    "title": str, "task": str, "license": str, "origin": str, "notes": str, "builtin": str,
    "input_size": list, "channel_order": str, "scale": (int, float), "mean": list, "resize": int,
    "transpose": bool, "num_classes": int, "output": str, "default_blob": str,
    "labels": dict, "files": dict, "dream_blobs": list,
}
_REQUIRED = ("title", "task", "license", "origin", "input_size", "channel_order", "num_classes", "output",
             "default_blob", "labels")


def parse_card(name: str, table: Mapping[str, Any], source: str) -> ModelCard:
    """One [models.NAME] table -> ModelCard; every problem names the file and the key."""
    where = f"{source}: [models.{name}]"
    t = _take(table, _CARD_KEYS, where)
    for key in _REQUIRED:
        if key not in t:
            raise RegistryError(f"{where}: missing key {key!r}")
    size = t["input_size"]
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise RegistryError(f"{where}: input_size must be [H, W]")
    if t["channel_order"] not in ("BGR", "RGB"):
        raise RegistryError(f"{where}: channel_order must be \"BGR\" or \"RGB\"")
    mean = t.get("mean")
    if mean is not None and (len(mean) != 3 or not all(isinstance(v, (int, float)) for v in mean)):
        raise RegistryError(f"{where}: mean must be three numbers (one per channel, in channel_order)")
    files = {role: _file_spec(role, ft, f"{where}.files.{role}") for role, ft in t.get("files", {}).items()}
    for spec in files.values():
        if spec.archive and spec.archive not in files:
            raise RegistryError(f"{where}.files.{spec.role}: archive {spec.archive!r} is not a file of this model")
    if not t.get("builtin"):
        for role in ("prototxt", "weights"):
            if role not in files:
                raise RegistryError(f"{where}: no files.{role}")
        for spec in files.values():
            if not spec.url and not spec.archive:
                raise RegistryError(f"{where}.files.{spec.role}: no url")
    labels = _labels(t["labels"], f"{where}.labels")
    if labels.file and labels.file not in files:
        raise RegistryError(f"{where}.labels: file {labels.file!r} is not a file of this model")
    blobs = tuple(_dream_blob(b, f"{where}.dream_blobs[{i}]") for i, b in enumerate(t.get("dream_blobs", [])))
    return ModelCard(
        name=name,
        title=t["title"],
        task=t["task"],
        license=t["license"],
        origin=t["origin"],
        notes=t.get("notes", ""),
        builtin=t.get("builtin"),
        input_size=(size[0], size[1]),
        channel_order=t["channel_order"],
        scale=float(t.get("scale", 1.0)),
        mean=tuple(float(v) for v in mean) if mean is not None else None,  # type: ignore[arg-type]
        resize=int(t.get("resize", 256)),
        transpose=bool(t.get("transpose", False)),
        num_classes=t["num_classes"],
        output=t["output"],
        default_blob=t["default_blob"],
        labels=labels,
        files=files,
        dream_blobs=blobs,
        defined_in=source,
    )


def parse_toml(path: Path) -> dict[str, ModelCard]:
    """Read one models.toml; an unreadable or malformed file is a one-line error naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RegistryError(f"{path}: cannot read ({e.strerror or e})") from None
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{path}: not valid TOML ({e})") from None
    _take(data, {"models": dict}, str(path))
    return {name: parse_card(name, table, str(path)) for name, table in data.get("models", {}).items()}


# --- where things live ---------------------------------------------------------------------------


def zoo_home() -> Path:
    """$ZOO_HOME, else the platform's user cache directory for "zoo"."""
    env = os.environ.get("ZOO_HOME")
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs
    except ImportError:  # a declared dependency, but keep working without it
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "zoo"
    return Path(platformdirs.user_cache_dir("zoo"))


def user_toml() -> Path:
    return zoo_home() / "models.toml"


# --- the registry --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    cards: Mapping[str, ModelCard] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.cards)

    def get(self, name: str) -> ModelCard:
        """The card for NAME; an unknown name lists the closest known names."""
        if name in self.cards:
            return self.cards[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.4)
        hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(self.names())}"
        raise RegistryError(f"unknown model {name!r}; {hint}")

    def __contains__(self, name: object) -> bool:
        return name in self.cards


def load_registry(user_path: Path | None = None) -> Registry:
    """The built-in cards with the user's models.toml merged over them (same name: user wins)."""
    cards = dict(parse_toml(BUILTIN_TOML))
    path = user_path if user_path is not None else user_toml()
    if path.is_file():
        cards.update(parse_toml(path))
    return Registry(cards)


def get_card(name: str) -> ModelCard:
    return load_registry().get(name)


# --- the user's models.toml ----------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_models(models: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for {name: card table}, in the layout of the built-in models.toml."""
    out: list[str] = []
    for name, table in models.items():
        out.append(f"[models.{name}]")
        out += [f"{k} = {_toml_value(v)}" for k, v in table.items() if not isinstance(v, (dict, list))
                or (isinstance(v, list) and not (v and isinstance(v[0], Mapping)))]
        if "labels" in table:
            out += ["", f"[models.{name}.labels]"] + [f"{k} = {_toml_value(v)}" for k, v in table["labels"].items()]
        for role, spec in table.get("files", {}).items():
            out += ["", f"[models.{name}.files.{role}]"] + [f"{k} = {_toml_value(v)}" for k, v in spec.items()]
        for blob in table.get("dream_blobs", []):
            out += ["", f"[[models.{name}.dream_blobs]]"] + [f"{k} = {_toml_value(v)}" for k, v in blob.items()]
        out += ["", ""]
    return "\n".join(out)


def _read_user_tables(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("models", {}))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RegistryError(f"{path}: cannot read ({e})") from None


def _write_user_tables(path: Path, tables: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text("# Models registered on this machine (zoo convert --name, zoo train).\n\n"
                   + dump_models(tables), encoding="utf-8")
    os.replace(tmp, path)


def register_user_model(name: str, table: Mapping[str, Any]) -> ModelCard:
    """Add or replace NAME in the user's models.toml (checked against the schema first).

    File urls may be local: `file:///abs/path/deploy.prototxt` with the file's sha256.
    """
    if not name or not all(c.isalnum() or c in "_-." for c in name):
        raise RegistryError(f"model name {name!r}: use letters, digits, '_', '-' or '.'")
    path = user_toml()
    card = parse_card(name, table, str(path))
    tables = _read_user_tables(path)
    tables[name] = dict(table)
    _write_user_tables(path, tables)
    return card


def unregister_user_model(name: str) -> bool:
    """Drop NAME from the user's models.toml; True if it was there."""
    path = user_toml()
    tables = _read_user_tables(path)
    if name not in tables:
        return False
    del tables[name]
    _write_user_tables(path, tables)
    return True


def card_table_from_card(card: ModelCard, **changes: Any) -> dict[str, Any]:
    """A models.toml table equal to `card` (with `changes`): a base for a fine-tuned model's entry."""
    table: dict[str, Any] = {
        "title": card.title, "task": card.task, "license": card.license, "origin": card.origin,
        "notes": card.notes, "input_size": list(card.input_size), "channel_order": card.channel_order,
        "scale": card.scale, "resize": card.resize, "transpose": card.transpose,
        "num_classes": card.num_classes, "output": card.output, "default_blob": card.default_blob,
    }
    if card.mean is not None:
        table["mean"] = list(card.mean)
    if card.builtin:
        table["builtin"] = card.builtin
    lab = card.labels
    table["labels"] = {k: v for k, v in (("builtin", lab.builtin), ("file", lab.file),
                                         ("names", list(lab.names) if lab.names is not None else None),
                                         ("format", lab.format), ("source", lab.source)) if v is not None}
    files: dict[str, Any] = {}
    for role, spec in card.files.items():
        f: dict[str, Any] = {k: v for k, v in (("url", spec.url), ("filename", spec.filename),
                                               ("archive", spec.archive), ("member", spec.member),
                                               ("unverified", spec.unverified), ("source", spec.source)) if v}
        if spec.checksum:
            f[spec.checksum.kind] = spec.checksum.hexdigest
        if spec.size is not None:
            f["size"] = spec.size
        files[role] = f
    table["files"] = files
    table["dream_blobs"] = [{"name": b.name, "shape": list(b.shape), "produces": b.produces}
                            for b in card.dream_blobs]
    table.update(changes)
    return table


def register_converted(name: str, *, prototxt: Path, weights: Path | None, mean: Path | None = None,
                       graph: Any = None, preprocess: dict | None = None, labels: list[str] | None = None) -> Path:
    """`zoo convert --name NAME` (see zoo.cache.register_converted); returns the user models.toml."""
    from zoo.cache import register_converted as _register

    return _register(name, prototxt=prototxt, weights=weights, mean=mean, graph=graph, preprocess=preprocess,
                     labels=labels)
