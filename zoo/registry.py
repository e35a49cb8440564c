"""Model cards: models.toml (built-in, then the user's) parsed into frozen dataclasses.

A card carries everything needed to use a model without knowing it: files with checksums,
preprocessing, labels and the blobs worth dreaming on. Unknown keys are errors, so a typo in a
user's models.toml is reported instead of silently ignored.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.io import make_dirs, write_text_atomic
from zoo.names import InvalidName, is_valid_filename, validate_filename, validate_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The repo root's models.toml; zoo/models.toml links to it so that wheels carry it as package data.
BUILTIN_TOML = Path(__file__).parent / "models.toml"
DATA_DIR = Path(__file__).resolve().parent / "data"
CHECKSUM_KINDS = ("sha256", "sha1", "md5", "git_blob")
HEX_LENGTHS = {"sha256": 64, "sha1": 40, "md5": 32, "git_blob": 40}
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


_NOT_IN_TOML = {"toml": False}  # field metadata: known from where the card sits, not written as a key


@dataclass(frozen=True)
class FileSpec:
    role: str = field(metadata=_NOT_IN_TOML)  # the key of the file's table
    filename: str = ""
    url: str | None = None
    checksum: Checksum | None = None  # written as `<kind> = "<hex>"`
    archive: str | None = None  # role of the archive file this one is taken from
    member: str | None = None
    unverified: str | None = None  # why no checksum is known (pinned on first download)
    source: str | None = None
    size: int | None = None  # bytes, where upstream states it (summed by `zoo list`)
    mirrors: tuple[str, ...] = ()  # further URLs of the same bytes, tried in order after `url`


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
    """One [models.NAME] table. The defaults here are the only defaults: parse_card leaves a missing
    optional key to them and to_table() leaves out a value equal to them."""

    name: str = field(metadata=_NOT_IN_TOML)
    title: str
    task: str
    license: str
    origin: str
    input_size: tuple[int, int]
    channel_order: str
    num_classes: int
    output: str
    default_blob: str
    labels: Labels
    files: Mapping[str, FileSpec] = field(default_factory=dict)
    dream_blobs: tuple[DreamBlob, ...] = ()
    scale: float = 1.0
    trained_blobs: tuple[str, ...] = ()  # a fine-tune's blobs that training changed (the rest are the base's)
    colour_cov: tuple[tuple[float, ...], ...] = ()  # RGB covariance (0..1) of the training pictures; (): ImageNet's
    mean: tuple[float, float, float] | None = None
    resize: int = 256
    transpose: bool = False
    classifier: str = ""  # the layer that maps features to classes (what a fine-tune replaces); "": ask the net
    builtin: str | None = None
    notes: str = ""
    defined_in: str = field(default="", metadata=_NOT_IN_TOML)

    @property
    def mean_from_file(self) -> bool:
        return self.mean is None and "mean" in self.files

    def to_table(self, **changes: Any) -> dict[str, Any]:
        """The models.toml table of this card (with `changes`), generated from the dataclass fields;
        parse_card(name, card.to_table()) gives the card back."""
        table = _table(self)
        table.update(changes)
        return table


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _table(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _table(obj: Any) -> dict[str, Any]:
    """A dataclass as a TOML table: every field but those marked not-in-TOML, defaults left out."""
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("toml", True) is False or value == _default(f):
            continue
        if isinstance(value, Checksum):
            out[value.kind] = value.hexdigest
        else:
            out[f.name] = _plain(value)
    return out


# --- parsing -------------------------------------------------------------------------------------


def _take(table: Any, allowed: dict[str, type | tuple[type, ...]], where: str) -> dict[str, Any]:
    """Check keys and value types of one TOML table; unknown keys name the key and where it is."""
    if not isinstance(table, Mapping):
        raise RegistryError(f"{where}: must be a table, not {type(table).__name__}")
    for key, value in table.items():
        if key not in allowed:
            raise RegistryError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[key]) or (isinstance(value, bool) and allowed[key] in (int, float)):
            raise RegistryError(f"{where}: key {key!r} has the wrong type ({type(value).__name__})")
    return dict(table)


def _file_spec(role: str, table: Mapping[str, Any], where: str) -> FileSpec:
    allowed: dict[str, Any] = {k: str for k in ("url", "filename", "archive", "member", "unverified", "source")}
    allowed.update({k: str for k in CHECKSUM_KINDS}, size=int, mirrors=list)
    t = _take(table, allowed, where)
    for m in t.get("mirrors", []):
        if not isinstance(m, str) or not m.startswith(("https://", "http://")) or any(c.isspace() for c in m):
            raise RegistryError(f"{where}: mirrors must be http(s) URLs, not {str(m)[:80]!r}")
    if t.get("size", 0) < 0:
        raise RegistryError(f"{where}: size must be a number of bytes (0 or more)")
    if role not in FILE_ROLES:
        raise RegistryError(f"{where}: unknown file role {role!r} (known: {', '.join(FILE_ROLES)})")
    sums = [Checksum(k, t[k].lower()) for k in CHECKSUM_KINDS if k in t]
    for s in sums:
        if len(s.hexdigest) != HEX_LENGTHS[s.kind] or not all(c in "0123456789abcdef" for c in s.hexdigest):
            raise RegistryError(f"{where}: {s.kind} must be {HEX_LENGTHS[s.kind]} hex digits, not {s.hexdigest!r}")
    if len(sums) > 1:
        raise RegistryError(f"{where}: give one checksum, not {len(sums)}")
    if ("archive" in t) != ("member" in t):
        raise RegistryError(f"{where}: 'archive' and 'member' go together")
    if "archive" not in t and not sums and "unverified" not in t:
        raise RegistryError(f"{where}: no checksum (sha256, sha1, md5 or git_blob; or unverified = \"why\")")
    if t.get("mirrors") and not sums:
        raise RegistryError(f"{where}: mirrors need a checksum (every source is held to the same one)")
    name = t.get("filename") or Path(t.get("member") or t.get("url") or "").name
    if not name:
        raise RegistryError(f"{where}: no file name (give url, member or filename)")
    try:
        validate_filename(name, "file name" if "filename" in t else "file name (from the url; give filename)")
    except InvalidName as e:
        raise RegistryError(f"{where}: {e}") from None
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
        mirrors=tuple(t.get("mirrors", ())),
    )


def _labels(table: Mapping[str, Any], where: str) -> Labels:
    t = _take(table, {"builtin": str, "file": str, "names": list, "format": str, "source": str}, where)
    given = [k for k in ("builtin", "file", "names") if k in t]
    if len(given) != 1:
        raise RegistryError(f"{where}: give exactly one of builtin, file, names")
    if "builtin" in t and (not is_valid_filename(t["builtin"]) or not (DATA_DIR / t["builtin"]).is_file()):
        raise RegistryError(f"{where}: builtin {t['builtin']!r} is not a labels file shipped in {DATA_DIR}")
    if "format" in t and t["format"] not in LABEL_FORMATS:
        raise RegistryError(f"{where}: unknown label format {t['format']!r} (known: {', '.join(LABEL_FORMATS)})")
    if "names" in t and not all(isinstance(n, str) for n in t["names"]):
        raise RegistryError(f"{where}: names must be strings")
    names = tuple(t["names"]) if "names" in t else None
    given_keys = {k: t[k] for k in ("builtin", "file", "format", "source") if k in t}
    return Labels(names=names, **given_keys)


def _dream_blob(table: Mapping[str, Any], where: str) -> DreamBlob:
    t = _take(table, {"name": str, "shape": list, "produces": str}, where)
    for key in ("name", "shape", "produces"):
        if key not in t:
            raise RegistryError(f"{where}: missing key {key!r}")
    shape = t["shape"]
    if not shape or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape):
        raise RegistryError(f"{where}: shape must be a list of positive integers (C, H, W)")
    return DreamBlob(t["name"], tuple(shape), t["produces"])


_CARD_KEYS: dict[str, Any] = {
    "title": str, "task": str, "license": str, "origin": str, "notes": str, "builtin": str,
    "input_size": list, "channel_order": str, "scale": (int, float), "mean": list, "resize": int,
    "transpose": bool, "num_classes": int, "output": str, "default_blob": str, "classifier": str,
    "labels": dict, "files": dict, "dream_blobs": list, "trained_blobs": list,
    "colour_cov": list,
}
_REQUIRED = ("title", "task", "license", "origin", "input_size", "channel_order", "num_classes", "output",
             "default_blob", "labels")


MAX_SIDE = 20_000  # the largest picture any reader accepts (zoo.memory.MAX_PIXELS)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _colour_cov(v: list, where: str) -> tuple[tuple[float, ...], ...]:
    """A 3x3 symmetric covariance of finite numbers, its diagonal not negative (a dream's colours
    are drawn through its square root)."""
    ok = len(v) == 3 and all(isinstance(r, list) and len(r) == 3 and all(_finite(x) for x in r) for r in v)
    if not ok or any(v[i][j] != v[j][i] for i in range(3) for j in range(3)) or min(v[i][i] for i in range(3)) < 0:
        raise RegistryError(f"{where}: colour_cov must be a symmetric 3x3 table of finite numbers (RGB covariance)")
    return tuple(tuple(float(x) for x in r) for r in v)


def _optional(t: dict[str, Any], where: str) -> dict[str, Any]:
    """The optional keys of a checked card table, as ModelCard fields."""
    trained = t.get("trained_blobs", [])
    if not all(isinstance(b, str) for b in trained):
        raise RegistryError(f"{where}: trained_blobs must be a list of blob names")
    optional: dict[str, Any] = {k: t[k] for k in ("notes", "builtin", "resize", "transpose", "classifier")
                                if k in t}
    if "scale" in t:
        optional["scale"] = float(t["scale"])
    if t.get("mean") is not None:
        optional["mean"] = tuple(float(v) for v in t["mean"])
    if trained:
        optional["trained_blobs"] = tuple(trained)
    if "colour_cov" in t:
        optional["colour_cov"] = _colour_cov(t["colour_cov"], where)
    return optional


def parse_card(name: str, table: Mapping[str, Any], source: str) -> ModelCard:
    """One [models.NAME] table -> ModelCard; every problem names the file and the key."""
    where = f"{source}: [models.{name}]"
    try:
        validate_name(name)
    except InvalidName as e:
        raise RegistryError(f"{source}: {e}") from None
    t = _take(table, _CARD_KEYS, where)
    for key in _REQUIRED:
        if key not in t:
            raise RegistryError(f"{where}: missing key {key!r}")
    size = t["input_size"]
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE for v in size):
        raise RegistryError(f"{where}: input_size must be [H, W], each 1 to {MAX_SIDE}")
    if t["channel_order"] not in ("BGR", "RGB"):
        raise RegistryError(f"{where}: channel_order must be \"BGR\" or \"RGB\"")
    mean = t.get("mean")
    if mean is not None and (len(mean) != 3 or not all(_finite(v) for v in mean)):
        raise RegistryError(f"{where}: mean must be three finite numbers (one per channel, in channel_order)")
    for key in ("num_classes", "resize"):
        if t.get(key, 0) < 0:
            raise RegistryError(f"{where}: {key} must not be negative")
    if t.get("resize", 0) > MAX_SIDE:
        raise RegistryError(f"{where}: resize must be at most {MAX_SIDE}")
    if "scale" in t and not (_finite(t["scale"]) and t["scale"] > 0):
        raise RegistryError(f"{where}: scale must be a finite positive number")
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
    if mean is None and "mean" not in files:
        raise RegistryError(f"{where}: no mean (give mean = [B, G, R] in channel_order, or files.mean)")
    labels = _labels(t["labels"], f"{where}.labels")
    if labels.file and labels.file not in files:
        raise RegistryError(f"{where}.labels: file {labels.file!r} is not a file of this model")
    blobs = tuple(_dream_blob(b, f"{where}.dream_blobs[{i}]") for i, b in enumerate(t.get("dream_blobs", [])))
    optional = _optional(t, where)
    return ModelCard(
        name=name, title=t["title"], task=t["task"], license=t["license"], origin=t["origin"],
        input_size=(size[0], size[1]), channel_order=t["channel_order"], num_classes=t["num_classes"],
        output=t["output"], default_blob=t["default_blob"], labels=labels, files=files, dream_blobs=blobs,
        defined_in=source, **optional,
    )


def parse_toml(path: Path) -> dict[str, ModelCard]:
    """Read one models.toml; an unreadable or malformed file is a one-line error naming it."""
    data = _load_toml(path)
    _take(data, {"models": dict}, str(path))
    return {name: parse_card(name, table, str(path)) for name, table in data.get("models", {}).items()}


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RegistryError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise RegistryError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise RegistryError(f"{path}: not valid TOML ({e}); {_repair_hint(path, str(e))}") from None


_HEADER = re.compile(r'\s*\[\[?\s*(?:models\s*\.\s*(?:"([^"\\]*)"|([A-Za-z0-9_-]+))|.)')


def _owners(lines: list[str]) -> list[str | None]:
    """For each line of a models.toml, the model whose entry it is in (None outside any entry)."""
    owner: str | None = None
    out = []
    for line in lines:
        m = _HEADER.match(line)
        if m:
            owner = m.group(1) or m.group(2)
        out.append(owner)
    return out


def _repair_hint(path: Path, error: str) -> str:
    """How to get past a broken models.toml: the entry holding the bad line, else moving it aside."""
    m = re.search(r"at line (\d+)", error)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    owners = _owners(lines)
    name = owners[int(m.group(1)) - 1] if m and 0 < int(m.group(1)) <= len(owners) else None
    if name and path == user_toml():
        return f"the line is in model {name}'s entry: `zoo remove {name}` drops it"
    return f"fix that line, or move it aside (mv {path} {path}.broken) to start a new one"


def repair_entry(name: str) -> bool:
    """Drop NAME's entry from a user's models.toml that is not valid TOML, when that makes it valid
    again (the old text is kept as models.toml.broken); False when the file is fine or that does
    not help. What `zoo remove NAME` does first."""
    path = user_toml()
    try:
        text = path.read_text(encoding="utf-8")
        tomllib.loads(text)
        return False
    except (OSError, UnicodeDecodeError):
        return False
    except tomllib.TOMLDecodeError:
        pass
    lines = text.splitlines(keepends=True)
    kept = "".join(line for line, owner in zip(lines, _owners(lines)) if owner != name)
    try:
        tomllib.loads(kept)
    except tomllib.TOMLDecodeError:
        return False
    if kept == text:
        return False
    write_text_atomic(path.with_name(path.name + ".broken"), text)
    write_text_atomic(path, kept)
    return True


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
        validate_name(name)
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


_TOML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_string(s: str) -> str:
    """A TOML basic string for any str: quotes, backslashes and every control character (C0, DEL)
    escaped, so text from a prototxt or a labels file cannot break the file. A lone surrogate
    (only from undecodable file names) has no TOML form and is written as U+FFFD."""
    out = []
    for ch in s:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04X}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\\uFFFD")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else toml_string(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
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
    models = _load_toml(path).get("models", {})
    if not isinstance(models, dict):
        raise RegistryError(f"{path}: [models] must be a table")
    return dict(models)


def _write_user_tables(path: Path, tables: Mapping[str, Any]) -> None:
    make_dirs(path.parent)
    try:
        write_text_atomic(path, "# Models registered on this machine (zoo convert --name, zoo train).\n\n"
                          + dump_models(tables))
    except OSError as e:
        raise RegistryError(f"{path}: cannot write ({e.strerror or e})") from None


def card_table_from_card(card: ModelCard, **changes: Any) -> dict[str, Any]:
    """Same as card.to_table(**changes) (kept for callers of the old name)."""
    return card.to_table(**changes)
