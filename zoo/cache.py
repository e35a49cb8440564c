"""The model cache: `$ZOO_HOME/models/<name>/` holds a model's verified files and its ONNX.

Progress and notices go out as zoo.events (downloads, the ONNX build, "fetching X"); `say`, where
given, takes the notices instead.

`ensure_model` is the one entry point commands use: it verifies what is cached (a corrupt file is
fetched again, never used), fetches what is missing (or, offline, says the exact `zoo fetch`
command), builds built-in models, and pins the digest of files upstream publishes no checksum for.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path

from zoo.errors import NetworkError, UserError
from zoo.events import Event, emit, note
from zoo.fetch import FetchOptions, fetch_file, file_digest, file_lock, matches, mirror_sources
from zoo.io import atomic_path, atomic_write, make_dirs, write_text_atomic
from zoo.names import model_file, model_folder
from zoo.registry import Checksum, FileSpec, ModelCard, zoo_home

PINS = ".pins.json"
ONNX_NAME = "model.onnx"


class NotCachedError(UserError):
    """A model is needed offline but is not in the cache."""


def models_dir() -> Path:
    return zoo_home() / "models"


def model_dir(name: str) -> Path:
    """`$ZOO_HOME/models/<name>`, for a valid name only, proven to be inside the cache."""
    return model_folder(models_dir(), name)


def file_path(card: ModelCard, role: str) -> Path:
    """Where file `role` of the card lives in the cache, proven to be inside the model's folder."""
    return model_file(models_dir(), card.name, role, card.files[role].filename)


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
    write_text_atomic(model_dir(name) / PINS, json.dumps(pins, indent=1, sort_keys=True))


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


def sources(card: ModelCard, spec: FileSpec) -> list[str]:
    """Where a file is tried, in order: $ZOO_MIRROR, the card's url (upstream), then the card's mirrors;
    every one is held to the same checksum."""
    return mirror_sources(card.name, spec.filename) + ([spec.url] if spec.url else []) + list(spec.mirrors)


def _extract_member(archive: Path, member: str, dest: Path) -> None:
    """Copy one regular file out of a tar archive (never extractall: no paths from the archive)."""
    try:
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
            src = tar.extractfile(info) if info.isfile() else None
            if src is None:
                raise UserError(f"{archive}: {member} is not a regular file")
            with src, atomic_write(dest) as out:
                shutil.copyfileobj(src, out)
    except KeyError:
        raise UserError(f"{archive}: has no member {member}") from None
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise UserError(f"{archive}: not a readable archive ({e or type(e).__name__})") from None


def _fetch_role(card: ModelCard, role: str, options: FetchOptions | None) -> None:
    spec = card.files[role]
    dest = file_path(card, role)
    if spec.archive:
        archive_spec = card.files[spec.archive]
        archive = file_path(card, spec.archive)
        fetch_file(sources(card, archive_spec), archive, archive_spec.checksum,
                   label=f"{card.name}/{archive_spec.filename}", options=options, size=archive_spec.size)
        with file_lock(dest):
            expected = expected_checksum(card, role)
            if not (dest.is_file() and (expected is None or matches(dest, expected))):
                _extract_member(archive, spec.member or "", dest)
        _pin(card, role)
        return
    fetch_file(sources(card, spec), dest, expected_checksum(card, role),
               label=f"{card.name}/{spec.filename}", options=options, size=spec.size)
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
    if is_cached(card) and not corrupt_roles(card):
        return  # built: nothing to write, so a read-only $ZOO_HOME dreams with it all the same
    with file_lock(d / "build"):
        if is_cached(card) and not corrupt_roles(card):
            return
        say(f"building {card.name} from the installed package (first use, no download)")
        try:
            build(d)
        except OSError as e:  # a full disk or a quota: the build's files are written whole or not at all
            raise UserError(f"cannot build {card.name} into {d}: {e.strerror or e}") from None
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
    say = say or note
    options = options or FetchOptions.from_env()  # a bad ZOO_FETCH_* value fails before anything is said
    make_dirs(model_dir(card.name))
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
            except NetworkError as e:
                if not e.offline:
                    raise
                raise NetworkError(f"{e} (no network? set ZOO_MIRROR, or use --model efficientnet_lite0, which "
                                   "needs no download)", offline=True) from None
        _drop_archives(card)
    return {role: file_path(card, role) for role in needed_roles(card)}


def ensure_onnx(card: ModelCard, paths: dict[str, Path], say: Callable[[str], None] | None = None) -> Path:
    """The converted ONNX beside the Caffe files, built once, and again if the Caffe files change or
    the ONNX no longer matches the sha256 pinned when it was built (a truncated or damaged file)."""
    dest = onnx_path(card)
    sources = [paths["prototxt"], paths["weights"]]
    with file_lock(dest):
        pinned = _read_pins(card.name).get(ONNX_NAME)
        if dest.is_file() and all(dest.stat().st_mtime >= p.stat().st_mtime for p in sources):
            if pinned is None or file_digest(dest, "sha256") == pinned:
                return dest
            (say or note)(
                f"{card.name}: cached {ONNX_NAME} is damaged (checksum differs); building it again")
        from zoo import convert

        emit(Event("build", 0, 2, "step", key=f"{card.name}/{ONNX_NAME}", info="reading the Caffe files"))
        graph = convert.load_net(str(paths["prototxt"]), str(paths["weights"]))
        emit(Event("build", 1, 2, "step", key=f"{card.name}/{ONNX_NAME}", info="writing ONNX"))
        with atomic_path(dest) as tmp:
            convert.write_onnx(graph, str(tmp))
        emit(Event("build", 2, 2, "step", key=f"{card.name}/{ONNX_NAME}", final=True))
        pins = _read_pins(card.name)
        pins[ONNX_NAME] = file_digest(dest, "sha256")
        _write_pins(card.name, pins)
    return dest


def remove_model(name: str) -> bool:
    """Delete a model's cache directory; True if there was one."""
    d = model_dir(name)
    if not d.is_dir():
        return False
    shutil.rmtree(d)
    return True
