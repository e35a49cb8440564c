"""Model names and cache paths: the one gate between what a card, a CLI argument or a mirror says
and a path on disk.

A model name is a TOML key, a cache folder name and a URL path segment at once, so it gets one
fixed character set: a letter or digit, then up to 63 letters, digits, `_` or `-` (no dots, no
separators, so `.`, `..` and `a/b` cannot be names). A cached file name is a plain basename of the
same kind, dots allowed but not first. `inside()` then proves, after resolving symlinks, that a path
built from them is where it claims to be.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo.errors import UserError

NAME_RULE = "a letter or digit, then up to 63 letters, digits, '_' or '-'"
FILE_RULE = "a plain file name: a letter or digit, then up to 127 letters, digits, '.', '_' or '-'"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class InvalidName(UserError):
    """A model name or file name outside the fixed character set."""


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def validate_name(name: object, what: str = "model name") -> str:
    """`name` if it is a valid model name, else InvalidName saying the rule."""
    if not is_valid_name(name):
        raise InvalidName(f"{what} {name!r} is not allowed: use {NAME_RULE}")
    return name  # type: ignore[return-value]


def is_valid_filename(name: object) -> bool:
    return (isinstance(name, str) and _FILE.fullmatch(name) is not None
            and not name.endswith((".part", ".lock")))


def validate_filename(name: object, what: str = "file name") -> str:
    """`name` if it is a plain basename for the cache (no separators, not hidden, not `.`/`..`)."""
    if not is_valid_filename(name):
        raise InvalidName(f"{what} {name!r} is not allowed: use {FILE_RULE}")
    return name


def inside(root: Path, *parts: str) -> Path:
    """root/parts..., resolved, after proving it lies directly where the parts say (no symlink or
    `..` leads elsewhere). Raises UserError otherwise."""
    try:
        base = Path(root).resolve()
        path = base.joinpath(*parts).resolve()
        expected = base.joinpath(*parts)
    except (ValueError, OSError) as e:  # a NUL byte, a name the file system cannot take
        raise UserError(f"{Path(root)}: {'/'.join(parts)!r} cannot be a path here ({e})") from None
    if path != expected or base not in path.parents:
        raise UserError(f"{Path(root).joinpath(*parts)}: leads outside {base} (refusing to use it)")
    return path


MAX_DEPTH = 16


def relative_parts(rel: object, what: str) -> tuple[str, ...]:
    """The parts of a `/`-separated relative path that a file (a catalog, an archive, a run record)
    names, each a plain file name (FILE_RULE: no `..`, no `%`, no `\\`, no NUL, at most 128
    characters); InvalidName naming `what` and the path otherwise."""
    parts = tuple(rel.split("/")) if isinstance(rel, str) else ()
    if not 1 <= len(parts) <= MAX_DEPTH or not all(is_valid_filename(p) for p in parts):
        shown = rel[:200] + "..." if isinstance(rel, str) and len(rel) > 200 else rel
        raise InvalidName(f"{what} {shown!r} is not allowed: use up to {MAX_DEPTH} '/'-separated parts, "
                          f"each {FILE_RULE}")
    return parts


def join_inside(root: Path, rel: object, what: str) -> Path:
    """THE safe join for paths that file content names: `root/rel`, resolved, only when every part
    of `rel` is a plain name and no symlink under root leads out (UserError naming `what` otherwise)."""
    return inside(root, *relative_parts(rel, what))


def model_folder(models_root: Path, model: str) -> Path:
    """The cache folder of model `model` under `models_root`, proven to be inside it."""
    return inside(models_root, validate_name(model))


def model_file(models_root: Path, model: str, role: str, filename: str) -> Path:
    """Where file `role` of `model` lives in the cache, proven to be inside the model's folder."""
    validate_filename(filename, f"model {model}: files.{role} file name")
    return inside(models_root, validate_name(model), filename)
