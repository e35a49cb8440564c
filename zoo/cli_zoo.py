"""CLI commands for zoo/: list, fetch, classify, remove (registered into the zoo app).

Thin: each command calls the library and prints. `model_card_text(name)` is what `zoo info NAME`
shows when NAME is not a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from zoo.cli_output import err_console, make_progress, print_json, print_table
from zoo.errors import UserError

out = Console(highlight=False, soft_wrap=True)
err = err_console()


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def download_size(card) -> tuple[int, bool]:
    """Bytes to download for a card (files taken out of an archive are not counted twice), and
    whether every downloaded file states its size; built-in models download nothing."""
    if card.builtin:
        return 0, True
    fetched = [s for s in card.files.values() if not s.archive]
    return sum(s.size or 0 for s in fetched), all(s.size is not None for s in fetched)


def _download_text(card) -> str:
    """The total when every downloaded file states its size, else `?`: the prototxt's few KB alone
    would read as the size of a model whose weights are hundreds of MB."""
    total, complete = download_size(card)
    if card.builtin:
        return "none"
    return _size(total) if complete and total else "?"


def model_card_text(name: str) -> str:
    """The model card of a registered model as plain text (for `zoo info NAME`)."""
    from zoo import cache
    from zoo.fetch import mirror_sources
    from zoo.registry import get_card

    card = get_card(name)
    h, w = card.input_size
    if card.mean is not None:
        mean = "mean pixel (" + ", ".join(f"{v:g}" for v in card.mean) + ")"
    else:
        mean = "mean file (per-channel mean used)"
    crop = f"short side {card.resize}, center crop {h}x{w}" if card.resize > 0 else f"resize to {h}x{w}"
    lines = [
        f"{card.name}: {card.title}",
        f"  task:        {card.task}, {card.num_classes} classes, output blob {card.output!r}",
        f"  license:     {card.license}",
        f"  origin:      {card.origin}",
        f"  input:       {h}x{w} {card.channel_order}, 0..255 minus {mean}, times {card.scale:g}"
        + (", transposed (x and y swapped)" if card.transpose else ""),
        f"  geometry:    {crop}",
        f"  labels:      {card.labels.source or card.labels.builtin or card.labels.file or 'inline'}",
        f"  cached:      {'yes' if cache.is_cached(card) else 'no'} ({cache.model_dir(card.name)})",
    ]
    if card.notes:
        lines.append(f"  notes:       {card.notes}")
    lines.append("  files:")
    for role, spec in card.files.items():
        if spec.checksum:
            how = str(spec.checksum)
        elif spec.archive:
            how = f"from {card.files[spec.archive].filename}:{spec.member}"
        else:
            how = f"unverified: {spec.unverified}"
        where = spec.url or ("built from the installed package" if card.builtin else "")
        lines.append(f"    {role:9s} {spec.filename}  [{how}]" + (f"\n              {where}" if where else ""))
        mirror = mirror_sources(card.name, spec.filename)
        if mirror:
            lines.append(f"              mirror: {mirror[0]}")
    lines.append(f"  dream blobs (shape C x H x W at {h}x{w}; default {card.default_blob!r}):")
    for b in card.dream_blobs:
        shape = " x ".join(str(v) for v in b.shape)
        lines.append(f"    {b.name:22s} {b.shape[0]:5d} ch  {shape:16s} {b.produces}")
    return "\n".join(lines)


def model_card_dict(name: str) -> dict:
    """The model card of a registered model as plain data (for `zoo info NAME --json`)."""
    from zoo import cache
    from zoo.registry import get_card

    card = get_card(name)
    files = {role: {"filename": s.filename, "checksum": str(s.checksum) if s.checksum else None, "url": s.url,
                    "size": s.size, "archive": s.archive, "member": s.member, "unverified": s.unverified}
             for role, s in card.files.items()}
    return {"name": card.name, "title": card.title, "task": card.task, "classes": card.num_classes,
            "output": card.output, "license": card.license, "origin": card.origin, "input": list(card.input_size),
            "channel_order": card.channel_order, "mean": list(card.mean) if card.mean is not None else None,
            "scale": card.scale, "transpose": card.transpose, "resize": card.resize, "notes": card.notes,
            "cached": cache.is_cached(card), "folder": str(cache.model_dir(card.name)), "files": files,
            "default_blob": card.default_blob,
            "dream_blobs": [{"name": b.name, "shape": list(b.shape), "produces": b.produces}
                            for b in card.dream_blobs]}


def print_model_card(name: str, as_json: bool = False) -> None:
    """`zoo info NAME`: the model card on stdout (a folder or a missing file is said to be one)."""
    from zoo.names import is_valid_name
    from zoo.registry import load_registry

    path = Path(name)
    if path.is_dir():
        raise UserError(f"{name}: is a folder; give a prototxt file or a model name (see `zoo list`)")
    if path.exists():  # there, but info took no file: a FIFO, a device, a socket
        raise UserError(f"{name}: not a regular file; give a prototxt file or a model name (see `zoo list`)")
    if not is_valid_name(name) or (path.suffix and name not in load_registry()):
        raise UserError(f"{name}: no such file, and not a model name (see `zoo list`)")
    if as_json:
        print_json(model_card_dict(name))
    else:
        out.print(model_card_text(name), markup=False)


def list_rows() -> list[dict]:
    """One dict per model for `zoo list` (and its `--json`): sizes in bytes, None where unknown."""
    from zoo import cache
    from zoo.registry import load_registry

    registry = load_registry()
    rows = []
    for name in registry.names():
        card = registry.get(name)
        cached = cache.is_cached(card)
        total, complete = download_size(card)
        rows.append({"name": name, "task": card.task, "input": list(card.input_size),
                     "channel_order": card.channel_order, "classes": card.num_classes,
                     "download_bytes": total if complete else None, "download": _download_text(card),
                     "cached_bytes": cache.cached_size(card) if cached else None,
                     "cached": "yes" if cached else ("built in" if card.builtin else "no")})
    return rows


def _list(as_json: bool) -> None:
    rows = list_rows()
    if as_json:
        print_json(rows)
        return
    print_table(("name", "task", "input", "classes", "download", "size", "cached"),
                [(r["name"], r["task"], f"{r['input'][0]}x{r['input'][1]} {r['channel_order']}", r["classes"],
                  r["download"], _size(r["cached_bytes"]) if r["cached_bytes"] is not None else "-", r["cached"])
                 for r in rows], right=("classes", "download", "size"))


def _fetch(names: list[str]) -> None:
    from zoo import cache
    from zoo.registry import load_registry

    registry = load_registry()
    cards = [registry.get(n) for n in names]  # unknown names fail before anything is downloaded
    for card in cards:
        paths = cache.ensure_model(card, say=lambda m: err.print(m, markup=False))
        onnx = cache.ensure_onnx(card, paths)
        out.print(f"{card.name}: ready in {onnx.parent}", markup=False)


def _classify(images: list[Path], model: str | None, top: int, as_json: bool, offline: bool, batch: int) -> list:
    """Print the results; returns those that could not be decoded (one image's error is left to the
    caller: it is the command's one line)."""
    from zoo import api, cache
    from zoo.runner import Classifier

    card, paths = api.resolve(model, offline=offline)
    onnx = cache.ensure_onnx(card, paths)
    clf = Classifier(onnx, api.preprocess_for(card, paths), api.labels_for(card, paths), output=card.output)
    with make_progress(err, transient=True, disable=len(images) <= batch) as progress:
        task = progress.add_task("classifying", total=len(images))
        results = clf.classify(images, k=top, batch_size=batch,
                               on_progress=lambda n: progress.advance(task, n))
    failed = [r for r in results if r.error]
    for r in failed if len(images) > 1 else ():
        err.print(f"error: {r.path}: {r.error}", markup=False)
    if as_json:
        print(json.dumps({"model": card.name, "results": [r.as_dict() for r in results]}, indent=1))
    else:
        for r in results:
            if r.error:
                continue
            out.print(r.path, markup=False)
            for p in r.top:
                out.print(f"  {p.prob:7.4f}  {p.index:4d}  {p.label}", markup=False)
    return failed


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("list")
    def list_cmd(as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False) -> None:
        """List the models: name, task, input, classes, download size ("?" where upstream does not state
        every file's size), cached size. Piped, the table is plain tab-separated text."""
        _list(as_json)

    @app.command("fetch")
    def fetch_cmd(
        names: Annotated[list[str], typer.Argument(help="Model names (see `zoo list`).")],
    ) -> None:
        """Download models (checksummed; $ZOO_MIRROR first) and build their ONNX."""
        _fetch(names)

    @app.command("classify")
    def classify_cmd(
        images: Annotated[list[Path], typer.Argument(help="Image files.")],
        model: Annotated[str | None, typer.Option("--model", "-m", help="Model name (default: bvlc_googlenet, "
                                                  "or the built-in efficientnet_lite0 when it cannot be had).")] = None,
        top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many classes to show.")] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        offline: Annotated[bool, typer.Option("--offline", help="Never download; fail if not cached.")] = False,
        batch: Annotated[int, typer.Option("--batch", min=1, help="Images per ONNX Runtime call.")] = 16,
    ) -> None:
        """Classify images with a model's own preprocessing and labels (ONNX Runtime)."""
        failed = _classify(images, model, top, as_json, offline, batch)
        if failed and len(images) == 1:
            raise UserError(f"{failed[0].path}: {failed[0].error}")
        if failed:
            raise UserError(f"{len(failed)} of {len(images)} images could not be decoded (see above)")

    @app.command("remove")
    def remove_cmd(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
        """Delete a model from the cache (and a user-registered model from $ZOO_HOME/models.toml)."""
        from zoo.register import remove_model

        unregistered = remove_model(name)
        out.print(f"{name}: removed" + (" (and its user entry)" if unregistered else ""), markup=False)
