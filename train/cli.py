"""CLI commands for train/: `zoo train`, `zoo export RUN`, `zoo data pack` (thin: they build a config
and call the library).

`zoo train`'s options are generated from TrainConfig's fields (name, type, default, help, closed
choices as Enums), so each default and help text lives in one place. Every option defaults to None
here: what the user gave is told apart from the defaults, which a resumed run takes from its
checkpoint instead.
"""

from __future__ import annotations

import inspect
import math
import os
from dataclasses import MISSING, Field, fields
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from zoo.train.config import TrainConfig

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Opt = typer.Option
# Options of the command that are not config values.
EXTRA = [
    ("resume", bool, Opt("--resume", help="Continue the run in --out from its checkpoint.")),
    ("quiet", bool, Opt("--quiet", "-q", help="No progress bars.")),
]


def to_argv(given: dict[str, Any]) -> list[str]:
    """CLI flags for the given config values (to re-run `zoo train` under torchrun)."""
    argv: list[str] = []
    for key, value in given.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, str(value.value if isinstance(value, Enum) else value)]
    return argv


def _option(f: Field) -> inspect.Parameter:
    """One TrainConfig field as a typer option (default None: "not given")."""
    flag = "--" + f.name.replace("_", "-")
    meta = f.metadata
    default = f.default if f.default is not MISSING else None
    plain = f.type if isinstance(f.type, type) else {"str": str, "int": int, "float": float, "bool": bool}[f.type]
    kind = meta.get("choices") or plain
    shown = str(default.value if isinstance(default, Enum) else default) if default not in ("", None) else False
    names = (f"{flag}/--no-{flag[2:]}",) if kind is bool else (flag,)
    if kind is bool:
        shown = flag[2:] if default else f"no-{flag[2:]}"
    if isinstance(shown, str):
        shown = shown.replace(",", ", ")  # a list of values wraps at 80 columns instead of being cut
    text = meta["help"] + (f" \\[default: {shown}]" if shown else "")  # \[: a bracket, not rich markup
    option = Opt(*names, *meta.get("flags", ()), help=text, show_default=False)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, option])


def _signature() -> inspect.Signature:
    params = [_option(f) for f in fields(TrainConfig)]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[t, o])
               for n, t, o in EXTRA]
    return inspect.Signature(params, return_annotation=None)


def given_options(options: dict[str, Any]) -> dict[str, Any]:
    """The config values the user gave, Enums as their plain strings (what checkpoints store)."""
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in options.items() if v is not None}


def train_cmd(*, resume: bool = False, quiet: bool = False, **options: Any) -> None:
    """Fine-tune a zoo brain (or train one from scratch) on your images; export it with --name."""
    given = given_options(options)
    nproc = given.get("nproc") or 1
    if nproc > 1 and "RANK" not in os.environ:
        _relaunch(nproc, given, resume, quiet)
    if not resume and not given.get("dataset"):
        raise typer.BadParameter("give --dataset (a class-folder path, arthistory or lfw)", param_hint="--dataset")
    result, cfg = _run(given, resume, quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return
    out.print(summary(result), markup=False)
    if cfg.name:
        _export(result.run_dir, cfg.name)


train_cmd.__signature__ = _signature()  # type: ignore[attr-defined]


def _relaunch(nproc: int, given: dict[str, Any], resume: bool, quiet: bool) -> None:
    from zoo.train.dist import launch

    argv = to_argv({k: v for k, v in given.items() if k != "nproc"})
    raise typer.Exit(launch(nproc, argv + (["--resume"] if resume else []) + (["--quiet"] if quiet else [])))


def _run(given: dict[str, Any], resume: bool, quiet: bool):
    """Start or resume the run; Ctrl-C says where the last checkpoint is and how to continue."""
    from zoo.train.loop import Interrupted, start_config, train

    cfg = TrainConfig(**{k: v for k, v in given.items() if k in {f.name for f in fields(TrainConfig)}})
    cfg, state = start_config(cfg, given, resume)
    try:
        return train(cfg, resume_state=state, show=not quiet), cfg
    except Interrupted as e:
        if int(os.environ.get("RANK", "0")) == 0:
            err.print(str(e), markup=False)
        raise typer.Exit(130) from None


def summary(result) -> str:
    """The closing line: iterations, held-out top-1 against chance, speed when anything ran."""
    parts = [f"{result.run_dir}: {result.iters} iterations"]
    if result.ran == 0:
        parts[0] += " (already finished; nothing to resume)"
    if not math.isnan(result.val_top1):
        parts.append(f"held-out top-1 {result.val_top1:.3f} (chance {1 / len(result.classes):.3f})")
    if result.ran > 0 and math.isfinite(result.images_per_s):
        parts.append(f"{result.images_per_s:.1f} images/s, {result.wall_s:.0f} s")
    return ", ".join(parts)


def export_cmd(
    run: Annotated[Path, typer.Argument(help="Run directory (with ckpt.pt).")],
    name: Annotated[str, Opt("--name", help="Zoo model name to register.")],
) -> None:
    """Export a training run as a zoo model: deploy.prototxt + caffemodel, ONNX, model card."""
    _export(run, name)


def pack_cmd(
    dataset: Annotated[str, typer.Argument(help="Class-folder path, arthistory or lfw.")],
    size: Annotated[int, Opt(help="Side of the stored square images (e.g. 256 for GoogLeNet).")] = 256,
    label: Annotated[str, Opt(help="For arthistory / lfw: how to label.")] = "",
    centuries: Annotated[str, Opt(help="arthistory: FROM-TO centuries.")] = "1-19",
    per_class: Annotated[int, Opt(help="arthistory: at most this many per class.")] = 500,
) -> None:
    """Decode and resize every image once into an HDF5 file next to the dataset."""
    from zoo.train.datasets import resolve
    from zoo.train.pack import open_or_pack

    images = resolve(dataset, label=label, centuries=centuries, per_class=per_class)
    src, notes = open_or_pack(images, size)
    for n in notes:
        out.print(n, markup=False)
    out.print(f"{src.path}: {len(src)} images, {len(src.classes)} classes, {size}x{size}", markup=False)


def _export(run: Path, name: str) -> None:
    from zoo.train.export import export_run

    ex = export_run(run, name)
    out.print(f"exported {ex.name}: {ex.prototxt}, {ex.caffemodel}, {ex.onnx}", markup=False)
    out.print(f"registered in {ex.models_toml}; try: zoo classify --model {name} IMAGE", markup=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("train")(train_cmd)
    app.command("export")(export_cmd)
    data_app = typer.Typer(no_args_is_help=True, help="Training data: pack datasets into HDF5.")
    data_app.command("pack")(pack_cmd)
    app.add_typer(data_app, name="data")
