"""What `zoo convert` writes, given a loaded graph: each format atomically (registering the result as a
zoo model is the zoo CLI's job: zoo.register)."""

from __future__ import annotations

from pathlib import Path

from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph


def output_base(prototxt: Path, output: Path | None) -> Path:
    stem = prototxt.stem.removesuffix(".prototxt")
    if output is None:
        return Path.cwd() / stem
    if output.is_dir():
        return output / stem
    return output.with_suffix("") if output.suffix in (".onnx", ".pt", ".caffemodel", ".prototxt") else output


def run_convert(graph: Graph, prototxt: Path, output: Path | None, formats: list[str], *,
                weights: Path | None = None) -> list[Path]:
    if weights is None:
        raise ConvertError(f"{prototxt}: converting needs trained weights; pass --weights FILE.caffemodel")
    base = output_base(prototxt, output)
    if not base.parent.exists():
        raise ConvertError(f"{base.parent}: output folder does not exist")
    written: list[Path] = []
    if "onnx" in formats:
        from zoo.convert.emit_onnx import write_onnx

        written.append(write_onnx(graph, base.with_suffix(".onnx")))
    if "caffe" in formats:
        from zoo.convert.emit_caffe import write_caffe

        written.extend(write_caffe(graph, base.parent / f"{base.name}.deploy.prototxt",
                                   base.with_suffix(".caffemodel")))
    if "pt" in formats:
        from zoo.convert.emit_pt import save_pt

        written.append(save_pt(graph, base.with_suffix(".pt")))
    return written
