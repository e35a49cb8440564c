"""What `zoo convert` writes, given a loaded graph: each format atomically (registering the result as a
zoo model is the zoo CLI's job: zoo.register)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph


def output_base(prototxt: Path, output: Path | None) -> Path:
    stem = prototxt.stem.removesuffix(".prototxt")
    if output is None:
        return Path.cwd() / stem
    if output.is_dir():
        return output / stem
    suffixes = (".onnx", ".pt", ".safetensors", ".caffemodel", ".prototxt")
    return output.with_suffix("") if output.suffix in suffixes else output


def with_ext(base: Path, ext: str) -> Path:
    """base + ext, keeping any dot in the base's name (`-o x.v2` writes x.v2.onnx, not x.onnx)."""
    return base.parent / f"{base.name}{ext}"


def _output_folder(folder: Path) -> Path | None:
    """Make the folder `-o` names (`-o out/net`: out/) when it is missing; the topmost folder made here
    (None when it existed), so a failed convert can take them all away again. A path through a file is
    one line."""
    if folder.is_dir():
        return None
    if folder.exists() or any(p.exists() and not p.is_dir() for p in folder.parents):
        raise ConvertError(f"{folder}: not a folder (the output path goes through a file)")
    top = folder
    while not top.parent.is_dir():
        top = top.parent
    try:
        folder.mkdir(parents=True)
    except OSError as e:
        raise ConvertError(f"{folder}: cannot make the output folder ({e.strerror or e})") from None
    return top


def run_convert(graph: Graph, prototxt: Path, output: Path | None, formats: list[str], *,
                weights: Path | None = None) -> list[Path]:
    if weights is None:
        raise ConvertError(f"{prototxt}: converting needs trained weights; pass --weights FILE.caffemodel")
    base = output_base(prototxt, output)
    made = _output_folder(base.parent)
    try:
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{base.name[:40]}.", suffix=".convert", dir=base.parent))
        except OSError as e:
            raise ConvertError(f"{base.parent}: cannot write ({e.strerror or e}); nothing written") from None
        try:
            staged = _write_all(graph, stage / base.name, formats, base)
            return _publish(staged, base.parent)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    except ConvertError:
        if made is not None:  # the folders made for -o, while they hold nothing: gone again
            folder = base.parent
            while not any(folder.iterdir()):
                folder.rmdir()
                if folder == made:
                    break
                folder = folder.parent
        raise


def _write_all(graph: Graph, base: Path, formats: list[str], shown: Path) -> list[Path]:
    """Every format into the staging folder; a write that fails is one line and nothing is published."""
    written: list[Path] = []
    try:
        if "onnx" in formats:
            from zoo.convert.emit_onnx import write_onnx

            written.append(write_onnx(graph, with_ext(base, ".onnx")))
        if "caffe" in formats:
            from zoo.convert.emit_caffe import write_caffe

            written.extend(write_caffe(graph, with_ext(base, ".deploy.prototxt"), with_ext(base, ".caffemodel")))
        if "safetensors" in formats:
            from zoo.convert.emit_safetensors import save_safetensors

            written.append(save_safetensors(graph, with_ext(base, ".safetensors")))
        if "pt" in formats:
            from zoo.convert.emit_pt import save_pt

            try:
                written.append(save_pt(graph, with_ext(base, ".pt")))
            except RuntimeError as e:  # torch wraps its writer's OSError
                raise OSError(None, str(e).splitlines()[0][:120]) from None
    except OSError as e:  # read-only or immutable folder, full disk, file size limit: one line, no traceback
        raise ConvertError(f"{shown.parent}: cannot write ({e.strerror or e}); nothing written") from None
    return written


def _publish(staged: list[Path], folder: Path) -> list[Path]:
    """Move the staged outputs to their names together: each target is checked first, so a convert's
    outputs appear all or none (never an x.onnx without the x.safetensors that failed)."""
    targets = [folder / p.name for p in staged]
    for t in targets:
        if t.is_dir() and not t.is_symlink():
            raise ConvertError(f"{t}: a folder is in the way; nothing written")
    try:
        for p, t in zip(staged, targets):
            os.replace(p, t)
    except OSError as e:
        raise ConvertError(f"{folder}: cannot write ({e.strerror or e})") from None
    return targets
