"""Files: uploads read by the CLI's own validating readers, recipes of dropped PNGs, studio files
(with format conversion and thumbnails)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response

from zoo.errors import UserError
from zoo.studio import media
from zoo.studio.guard import error
from zoo.studio.paths import area, ref_of, safe_name, studio_file
from zoo.studio.state import UPLOAD_KINDS, StudioDep

router = APIRouter(tags=["files"])


class _TooLarge(Exception):
    pass


async def _receive(request: Request, tmp: Path, limit: int) -> tuple[str, int]:
    """Stream the body into `tmp`: its sha256 and size; _TooLarge past `limit` bytes."""
    h, size = hashlib.sha256(), 0
    with open(tmp, "wb") as f:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest(), size


@router.post("/api/uploads")
async def upload(request: Request, studio: StudioDep,
                 kind: Literal[UPLOAD_KINDS] = Query(...),  # type: ignore[valid-type]
                 filename: str = Query(..., max_length=200)) -> dict:
    """Upload one file as the raw request body; it is read by the CLI's reader for its kind
    (image, prototxt, weights, mean, labels) and kept only if that reader accepts it."""
    limit = studio.settings.limits[kind]
    length = request.headers.get("content-length")
    name = safe_name(filename, kind)
    if length is not None and length.isdigit() and int(length) > limit:
        return error(413, f"{name}: too large ({int(length)} bytes; the limit for a {kind} is {limit} bytes)")
    tmp = area("tmp") / f"{uuid.uuid4().hex}-{name}"
    try:
        digest, size = await _receive(request, tmp, limit)
        if size == 0:
            raise UserError(f"{name}: empty file")
        info = await asyncio.to_thread(validate, kind, tmp, name)
        dest = area("uploads") / digest[:16] / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    except _TooLarge:
        return error(413, f"{name}: too large (more than {limit} bytes, the limit for a {kind})")
    except UserError as e:
        return error(400, str(e).replace(str(tmp), name))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return {"ref": ref_of(dest), "name": name, "kind": kind, "sha256": digest, "bytes": size, **info}


def _recipe_limit(name: str, limits: dict[str, int]) -> int:
    """What a dropped file may weigh, by the kind of output its name says it is."""
    from zoo.dream import audio_io, svg, video

    path = Path(name)
    if svg.is_svg(path):
        return limits["svg"]
    if audio_io.is_audio_path(path) or path.suffix.lower() in video.VIDEO_SUFFIXES:
        return limits["sound"]
    return limits["png"]


@router.post("/api/recipe")
async def recipe_of(request: Request, studio: StudioDep,
                    filename: str = Query("dropped.png", max_length=200)) -> dict:
    """The record a zoo output carries (the raw body; `filename` says its kind: a picture by default,
    or a sound, stroke SVG or video): what dropping it onto the page reads into the Dream form."""
    from zoo.dream import records

    name = safe_name(filename, "dropped.png")
    limit = _recipe_limit(name, studio.settings.limits)
    folder = area("tmp") / uuid.uuid4().hex
    tmp = folder / name
    try:
        folder.mkdir()
        await _receive(request, tmp, limit)
        found = await asyncio.to_thread(records.read, tmp)
    except _TooLarge:
        return error(413, f"{name}: too large (the limit for a dropped {Path(name).suffix or 'file'} is {limit} bytes)")
    except UserError as e:
        return error(400, str(e).replace(str(tmp), "dropped file"))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        with contextlib.suppress(OSError):
            folder.rmdir()
    data = dict(found.recipe)
    data["input_ref"] = ref_or_none(data.get("input") if isinstance(data.get("input"), str) else None)
    data["guide_ref"] = ref_or_none(data.get("guide") if isinstance(data.get("guide"), str) else None)
    return {"kind": found.kind, "recipe": data, "record": found.data, "command": found.command, "name": name}


@router.get("/api/files/{ref:path}")
def file(ref: str, format: Literal["png", "jpeg", "tiff"] | None = None,  # noqa: A002
         thumb: int | None = Query(None, ge=16, le=1024)):
    """A studio file (uploads, outputs, atlases, runs); `format` converts a picture for download,
    `thumb` gives a small JPEG. Pictures, sounds and videos are served as themselves, anything else (an
    SVG, text) as a download that cannot run in the studio's origin (zoo.studio.media.safe_file)."""
    path = studio_file(ref, ("uploads", "outputs", "atlases", "runs"))
    if thumb:
        return Response(thumbnail(path, thumb), media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})
    if format:
        return converted(path, format)
    return media.safe_file(path)


# --- helpers (server side, no torch) --------------------------------------------------------------


def _image(path: Path) -> dict:
    from zoo.dream.starts import check_image_file

    h, w = check_image_file(path)  # header and structure only: the worker decodes (issue 21)
    return {"width": int(w), "height": int(h)}


def _png(path: Path) -> dict:
    from zoo.dream.recipe import read_recipe

    info = _image(path)
    read_recipe(path)
    return info


def _prototxt(path: Path) -> dict:
    from zoo import convert

    g = convert.load_net(path)
    return {"layers": len(g.layers), "net": g.name}


def _mean(path: Path) -> dict:
    from zoo import convert

    return {"shape": list(convert.read_mean(path).shape)}


VALIDATORS = {"image": _image, "png": _png, "prototxt": _prototxt, "mean": _mean,
              "labels": lambda path: {"classes": len(read_labels(path))},
              "weights": lambda path: {},  # read with their prototxt at import (the converter needs both)
              **media.VALIDATORS}  # sound and svg: headers only, the worker decodes and renders


def validate(kind: str, path: Path, name: str) -> dict:
    """Read an upload with the CLI's reader for its kind; a UserError names what is wrong."""
    media.check_suffix(kind, name)
    return VALIDATORS[kind](path)


def read_labels(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{path}: labels are not UTF-8 text") from None


def ref_or_none(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return ref_of(Path(path))
    except ValueError:
        return None


THUMB_MAX_PIXELS = 8192 * 8192  # 512 MiB at most decoded in the web server for a thumbnail


def thumbnail(path: Path, side: int) -> bytes:
    import io

    from PIL import Image

    cache = area("tmp") / "thumbs"
    cache.mkdir(exist_ok=True)
    st = path.stat()
    key = hashlib.sha256(f"{path}:{st.st_mtime_ns}:{st.st_size}:{side}".encode()).hexdigest()[:24]
    hit = cache / f"{key}.jpg"
    if hit.is_file():
        return hit.read_bytes()
    from zoo.memory import check_image

    check_image(path, max_pixels=THUMB_MAX_PIXELS)  # decoded in the web server: capped
    try:
        with Image.open(path) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=85)
    except (OSError, ValueError) as e:
        raise UserError(f"{path.name}: cannot decode as an image ({type(e).__name__})") from None
    from zoo.io import write_bytes_atomic

    write_bytes_atomic(hit, buf.getvalue())
    return buf.getvalue()


def converted(path: Path, fmt: str) -> Response:
    """A picture in another format for download, written by `zoo dream`'s own writer: the JPEG (EXIF) and
    the 16-bit TIFF (ImageDescription) carry the same recipe as the PNG, so `zoo dream --recipe` reads them."""
    import numpy as np
    from PIL import Image

    from zoo.dream import output
    from zoo.dream.recipe import read_recipe

    if fmt == "png":
        return FileResponse(path, media_type="image/png", filename=path.name)
    try:
        recipe = read_recipe(path)
    except UserError:
        recipe = None  # a picture without a recipe converts all the same
    from zoo.memory import check_image

    check_image(path, per_pixel=16)  # the picture, its RGB copy and the 16-bit TIFF
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    ext = {"jpeg": "jpg", "tiff": "tif"}[fmt]
    tmp = area("tmp") / f"{uuid.uuid4().hex}.{ext}"
    try:
        output.write_image(tmp, rgb, recipe, quality=95)
        data = tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    stem = re.sub(r"\.[^.]*$", "", path.name)
    return Response(data, media_type=f"image/{fmt}",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'})
