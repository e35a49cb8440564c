"""CLI commands for train/: `zoo train`, `zoo export RUN`, `zoo data pack` (thin: they build a config
and call the library)."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True)

Opt = typer.Option


def _given(**opts: Any) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if v is not None}


def to_argv(given: dict[str, Any]) -> list[str]:
    """CLI flags for the given config values (to re-run `zoo train` under torchrun)."""
    argv: list[str] = []
    for key, value in given.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, str(value)]
    return argv


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command("train")
    def train_cmd(
        dataset: Annotated[str | None, Opt(help="Folder with one sub-folder per class, or arthistory, lfw.")] = None,
        label: Annotated[str | None, Opt(help="arthistory: school|timeframe|type|author; lfw: identity|gender")] = None,
        centuries: Annotated[str | None, Opt(help="arthistory: FROM-TO centuries, default 1-19 (to 1900).")] = None,
        per_class: Annotated[int | None, Opt(help="arthistory: at most this many paintings per class.")] = None,
        min_per_class: Annotated[int | None, Opt(help="Leave out classes with fewer images (reported).")] = None,
        val_fraction: Annotated[float | None, Opt(help="Held-out share of each class (default 0.2).")] = None,
        model: Annotated[str | None, Opt("--model", "-m", help="Zoo model or deploy.prototxt to start from.")] = None,
        weights: Annotated[str | None, Opt(help="With a prototxt --model: its caffemodel.")] = None,
        like: Annotated[str | None, Opt(help="With a prototxt --model: zoo model whose preprocessing to use.")] = None,
        init: Annotated[str | None, Opt(help="pretrained (default) or scratch (Caffe's fillers).")] = None,
        freeze_to: Annotated[str | None, Opt(help="Freeze every layer this blob depends on.")] = None,
        max_iter: Annotated[int | None, Opt(help="Iterations (default 1000).")] = None,
        batch: Annotated[int | None, Opt(help="Global batch per iteration (default 32).")] = None,
        micro_batch: Annotated[int | None, Opt(help="Images per forward; gradients accumulate to --batch.")] = None,
        base_lr: Annotated[float | None, Opt(help="Base learning rate (default 0.01).")] = None,
        lr_policy: Annotated[str | None, Opt(help="poly (default), step or fixed.")] = None,
        power: Annotated[float | None, Opt(help="poly: the power (default 0.5).")] = None,
        gamma: Annotated[float | None, Opt(help="step: factor per step (default 0.1).")] = None,
        stepsize: Annotated[int | None, Opt(help="step: iterations per step.")] = None,
        momentum: Annotated[float | None, Opt(help="SGD momentum (default 0.9).")] = None,
        weight_decay: Annotated[float | None, Opt(help="Weight decay (default 2e-4).")] = None,
        aux_weight: Annotated[float | None, Opt(help="Loss weight of auxiliary heads (default 0.3).")] = None,
        augment: Annotated[str | None, Opt(help="e.g. crop,mirror,brightness=0.4,hue=0.05,lighting or none.")] = None,
        pack_size: Annotated[int | None, Opt(help="Side of the packed images (default input * 256/224).")] = None,
        workers: Annotated[int | None, Opt(help="DataLoader worker processes (default 2).")] = None,
        seed: Annotated[int | None, Opt(help="Seed of the split, order, augmentation and init.")] = None,
        out_dir: Annotated[str | None, Opt("--out", help="Run directory (default runs/NAME).")] = None,
        name: Annotated[str | None, Opt(help="Export the result as this zoo model at the end.")] = None,
        eval_every: Annotated[int | None, Opt(help="Held-out evaluation every N iterations.")] = None,
        ckpt_every: Annotated[int | None, Opt(help="Checkpoint every N iterations.")] = None,
        log_every: Annotated[int | None, Opt(help="Log row every N iterations.")] = None,
        nproc: Annotated[int | None, Opt(help="Processes on this machine, through torchrun.")] = None,
        device: Annotated[str | None, Opt(help="auto, cpu or cuda.")] = None,
        preview: Annotated[bool | None, Opt("--preview/--no-preview", help="Dream preview at checkpoints.")] = None,
        resume: Annotated[bool, Opt("--resume", help="Continue the run in --out from its checkpoint.")] = False,
        quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress bars.")] = False,
    ) -> None:
        """Fine-tune a zoo brain (or train one from scratch) on your images; export it with --name."""
        from zoo.train.config import TrainConfig
        from zoo.train.dist import launch
        from zoo.train.loop import start_config, train

        given = _given(
            dataset=dataset, label=label, centuries=centuries, per_class=per_class, min_per_class=min_per_class,
            val_fraction=val_fraction, model=model, weights=weights, like=like, init=init, freeze_to=freeze_to,
            max_iter=max_iter, batch=batch, micro_batch=micro_batch, base_lr=base_lr, lr_policy=lr_policy,
            power=power, gamma=gamma, stepsize=stepsize, momentum=momentum, weight_decay=weight_decay,
            aux_weight=aux_weight, augment=augment, pack_size=pack_size, workers=workers, seed=seed, out=out_dir,
            name=name, eval_every=eval_every, ckpt_every=ckpt_every, log_every=log_every, nproc=nproc,
            device=device, preview=preview,
        )  # fmt: skip
        if (nproc or 1) > 1 and "RANK" not in os.environ:
            argv = to_argv({k: v for k, v in given.items() if k != "nproc"})
            code = launch(nproc, argv + (["--resume"] if resume else []) + (["--quiet"] if quiet else []))
            raise typer.Exit(code)
        if not resume and not dataset:
            raise typer.BadParameter("give --dataset (a class-folder path, arthistory or lfw)", param_hint="--dataset")
        cfg = TrainConfig(**{k: v for k, v in given.items() if k in {f.name for f in fields(TrainConfig)}})
        cfg, state = start_config(cfg, given, resume)
        result = train(cfg, resume_state=state, show=not quiet)
        if int(os.environ.get("RANK", "0")) != 0:
            return
        out.print(
            f"{result.run_dir}: {result.iters} iterations, held-out top-1 {result.val_top1:.3f} "
            f"(chance {1 / len(result.classes):.3f}), {result.images_per_s:.1f} images/s, "
            f"{result.wall_s:.0f} s",
            markup=False,
        )
        if cfg.name:
            _export(result.run_dir, cfg.name)

    @app.command("export")
    def export_cmd(
        run: Annotated[Path, typer.Argument(help="Run directory (with ckpt.pt).")],
        name: Annotated[str, Opt("--name", help="Zoo model name to register.")],
    ) -> None:
        """Export a training run as a zoo model: deploy.prototxt + caffemodel, ONNX, model card."""
        _export(run, name)

    data_app = typer.Typer(no_args_is_help=True, help="Training data: pack datasets into HDF5.")
    app.add_typer(data_app, name="data")

    @data_app.command("pack")
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
