"""The training run (nanoGPT-shaped): data, net, optimizer, then one loop that writes the learning
rate into the optimizer each step, accumulates gradients to the global batch, all-reduces them
across ranks, evaluates held-out top-1/top-k and checkpoints atomically every N iterations.

A run is a directory: ckpt.pt, log.csv, plot.png, previews/. `resume=True` continues from ckpt.pt
exactly: the data order, the augmentations and the dropout masks of iteration `it` depend on
(seed, rank, it) only, and the model, optimizer and random states come from the checkpoint.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import augment, checkpoint, preview
from .config import TrainConfig, accumulation, merge_resume, validate
from .data import AugmentedImages, BatchSampler, NetInput, Plan, eval_batches, loader
from .datasets import DatasetError, counts_line, keep_classes, resolve, stratified_split
from .dist import Dist, all_reduce_grads, setup, teardown
from .logbook import Logbook
from .model import CaffeSGD, TrainNet, build, load_source, param_groups, set_lr, trained_blobs
from .pack import open_or_pack
from .progress import bar, log
from .schedule import learning_rate


@dataclass
class Data:
    source: object
    classes: list[str]
    label_map: dict[int, int]
    train_idx: np.ndarray
    val_idx: np.ndarray
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_dir: Path
    iters: int
    classes: list[str]
    val_top1: float = float("nan")
    val_topk: float = float("nan")
    images_per_s: float = float("nan")
    wall_s: float = 0.0
    exported: Path | None = None


def pack_side(cfg: TrainConfig, input_size: tuple[int, int]) -> int:
    """The stored square side: the net's input scaled like GoogLeNet's 224 from 256."""
    return cfg.pack_size or int(round(max(input_size) * 256 / 224))


def prepare_data(cfg: TrainConfig, side: int, d: Dist, show: bool) -> Data:
    """Resolve, pack (rank 0 first), drop too-small classes and split, identically on every rank."""
    notes: list[str] = []
    for turn in (0, 1):  # rank 0 downloads and packs; the others then read what it made
        if (turn == 0) == d.master:
            opts = {"centuries": cfg.centuries, "per_class": cfg.per_class, "show": show and d.master}
            images = resolve(cfg.dataset, label=cfg.label, **opts)
            source, pack_notes = open_or_pack(images, side, show=show and d.master)
            notes += images.notes + pack_notes
        d.barrier()
    kept, drop_notes = keep_classes(source.labels, source.classes, max(2, cfg.min_per_class))
    notes += drop_notes
    if len(kept) < 2:
        raise DatasetError(
            f"{cfg.dataset}: {len(kept)} class(es) with at least {max(2, cfg.min_per_class)} images; need 2"
        )
    label_map = {old: new for new, old in enumerate(kept)}
    idx = np.flatnonzero(np.isin(source.labels, kept))
    labels = np.array([label_map[int(c)] for c in source.labels[idx]])
    tr, va = stratified_split(labels, cfg.val_fraction, cfg.seed)
    classes = [source.classes[c] for c in kept]
    notes.append(f"train {len(tr)} / held out {len(va)} images in {len(classes)} classes")
    notes.append("held out per class: " + counts_line(classes, labels[va]))
    return Data(source, classes, label_map, idx[tr], idx[va], notes)


def _iter_seed(seed: int, rank: int, it: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + it * 104_729) % (1 << 62)


def _kill_point(where: str, it: int) -> None:
    """Fault injection for tests: ZOO_TRAIN_KILL_AT=iter:N or ckpt:N sends SIGKILL to this process."""
    if os.environ.get("ZOO_TRAIN_KILL_AT") == f"{where}:{it}":
        os.kill(os.getpid(), signal.SIGKILL)


@torch.no_grad()
def evaluate(net: TrainNet, data: Data, netin: NetInput, size: tuple[int, int], micro: int, device) -> dict:
    """Held-out loss, top-1 and top-k (k = min(5, classes)) on centre crops."""
    module = net.module
    module.eval()
    ds = AugmentedImages(data.source, augment.build_eval(size), data.label_map)
    k = min(5, len(data.classes))
    total = loss = top1 = topk = 0.0
    for x, y in loader(ds, eval_batches(data.val_idx, max(micro, 1)), 0):
        x, y = netin(x.to(device)), y.to(device)
        logits, _ = net.forward(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        best = logits.topk(k, dim=1).indices
        top1 += float((best[:, 0] == y).sum())
        topk += float((best == y[:, None]).any(dim=1).sum())
        total += len(y)
    module.train()
    return {"val_loss": loss / total, "val_top1": top1 / total, "val_topk": topk / total}


def _state(net: TrainNet, opt, it: int, cfg: TrainConfig, classes: list[str], best: float, result) -> dict:
    return {
        "model": net.module.state_dict(),
        "optimizer": opt.state_dict(),
        "iter": it,
        "config": cfg.to_dict(),
        "classes": list(classes),
        "best_top1": best,
        "metrics": {"val_top1": result.val_top1, "val_topk": result.val_topk},
        "rng": checkpoint.rng_state(),
        "logits": net.logits,
        "classifier": net.classifier,
        "output": net.output,
    }


def _save(run_dir: Path, state: dict, it: int) -> None:
    if os.environ.get("ZOO_TRAIN_KILL_AT") == f"ckpt:{it}":  # die half-way through writing
        tmp = run_dir / f"{checkpoint.NAME}.kill.tmp"
        tmp.write_bytes(b"partial checkpoint")
        _kill_point("ckpt", it)
    checkpoint.save(run_dir, state)


def run_dir_for(cfg: TrainConfig) -> Path:
    if cfg.out:
        return Path(cfg.out)
    stem = Path(cfg.dataset.rstrip("/")).name or "dataset"
    return Path("runs") / (cfg.name or f"{stem}-{Path(cfg.model).stem}")


def start_config(cfg: TrainConfig, given: dict, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The config to run with and the checkpoint to resume (None for a fresh run)."""
    run_dir = run_dir_for(cfg)
    if resume:
        state = checkpoint.load(run_dir)
        merged = merge_resume(state["config"], given, str(run_dir / checkpoint.NAME))
        merged.out = str(run_dir)
        return merged, state
    if (run_dir / checkpoint.NAME).exists():
        raise checkpoint.CheckpointError(
            f"{run_dir}: already has a checkpoint; add --resume to continue it or choose another --out"
        )
    cfg.out = str(run_dir)
    return cfg, None


def train(cfg: TrainConfig, *, resume_state: dict | None = None, show: bool = True) -> RunResult:
    """Run (or continue) training as configured; rank 0 writes the run directory."""
    d = setup(cfg.device)
    try:
        cfg.nproc = d.world
        validate(cfg)
        return _train(cfg, d, resume_state, show)
    finally:
        teardown(d)


def _train(cfg: TrainConfig, d: Dist, resume_state: dict | None, show: bool) -> RunResult:
    t_start = time.perf_counter()
    run_dir = Path(cfg.out)
    say = show and d.master
    if d.master:
        run_dir.mkdir(parents=True, exist_ok=True)
        checkpoint.clean_partials(run_dir)
    source = load_source(cfg.model, init=cfg.init, seed=cfg.seed, weights=cfg.weights, like=cfg.like)
    size = tuple(source.preprocess.input_size)
    data = prepare_data(cfg, pack_side(cfg, size), d, show)
    for n in data.notes:
        log(n, enabled=say)
    if resume_state is not None and list(resume_state["classes"]) != data.classes:
        raise checkpoint.CheckpointError(
            f"{run_dir}: the dataset's classes changed since the checkpoint "
            f"({len(resume_state['classes'])} then, {len(data.classes)} now)"
        )
    net = build(source, len(data.classes), seed=cfg.seed, freeze_to=cfg.freeze_to)
    net.module.to(d.device)
    groups = param_groups(net.module, cfg.weight_decay)
    opt = CaffeSGD(groups, momentum=cfg.momentum)
    params = [p for g in groups for p in g["params"]]
    start = 0
    best = 0.0
    if resume_state is not None:
        net.module.load_state_dict(resume_state["model"])
        opt.load_state_dict(resume_state["optimizer"])
        checkpoint.set_rng_state(resume_state["rng"])
        start, best = int(resume_state["iter"]), float(resume_state.get("best_top1", 0.0))
        log(f"resuming {run_dir} at iteration {start}", enabled=say)
    micro, steps = accumulation(cfg)
    netin = NetInput.from_preprocess(source.preprocess)
    plan = Plan(data.train_idx, cfg.batch, cfg.seed)
    ds = AugmentedImages(data.source, augment.build(cfg.augment, size), data.label_map)
    batches = iter(loader(ds, BatchSampler(plan, start, cfg.max_iter, d.rank, d.world, micro), cfg.workers))
    book = Logbook(run_dir, resume_at=start if resume_state is not None else None) if d.master else None
    previews = d.master and cfg.preview and preview.available()
    start_rgb = preview.start_image(data.source[int(data.val_idx[0])]) if previews else None
    trained = trained_blobs(net.module.graph, net.frozen)
    blob = preview.default_blob(net.module.graph, source.card, trained) if previews else ""
    result = RunResult(run_dir, start, data.classes)
    if resume_state is not None:
        result.val_top1 = float(resume_state.get("metrics", {}).get("val_top1", float("nan")))
        result.val_topk = float(resume_state.get("metrics", {}).get("val_topk", float("nan")))
    window = {"loss": 0.0, "correct": 0.0, "n": 0.0, "t": 0.0}
    train_time = 0.0
    with bar(cfg.max_iter, f"training {run_dir.name}", enabled=say) as advance:
        advance(start)
        for it in range(start, cfg.max_iter):
            t0 = time.perf_counter()
            lr = learning_rate(cfg.lr_policy, it, **cfg.schedule_params())
            set_lr(opt, lr)
            torch.manual_seed(_iter_seed(cfg.seed, d.rank, it))
            opt.zero_grad(set_to_none=True)
            stats = torch.zeros(2, device=d.device)
            for _ in range(steps):
                x, y = next(batches)
                x, y = netin(x.to(d.device, non_blocking=True)), y.to(d.device, non_blocking=True)
                logits, aux = net.forward(x)
                loss = F.cross_entropy(logits, y, reduction="sum")
                total = loss + sum((cfg.aux_weight * F.cross_entropy(a, y, reduction="sum") for a in aux), 0.0)
                (total / cfg.batch).backward()
                stats += torch.stack([loss.detach(), (logits.detach().argmax(1) == y).sum().float()])
            all_reduce_grads(params, d)
            if d.world > 1:
                torch.distributed.all_reduce(stats)
            opt.step()
            _kill_point("iter", it + 1)
            dt = time.perf_counter() - t0
            train_time += dt
            window["loss"] += float(stats[0])
            window["correct"] += float(stats[1])
            window["n"] += cfg.batch
            window["t"] += dt
            done = it + 1
            ips = window["n"] / max(window["t"], 1e-9)
            advance(1, info=f"loss {window['loss'] / window['n']:.3f}  lr {lr:.2e}  {ips:.1f} img/s")
            last = done == cfg.max_iter
            if not d.master:
                continue
            row = None
            if done % cfg.log_every == 0 or last:
                row = {
                    "iter": done,
                    "lr": lr,
                    "loss": window["loss"] / window["n"],
                    "batch_top1": window["correct"] / window["n"],
                    "images_per_s": ips,
                    "elapsed_s": time.perf_counter() - t_start,
                }
                result.images_per_s = ips
                window = {"loss": 0.0, "correct": 0.0, "n": 0.0, "t": 0.0}
            if done % cfg.eval_every == 0 or last:
                metrics = evaluate(net, data, netin, size, micro, d.device)
                row = {**(row or {"iter": done, "lr": lr}), **metrics}
                result.val_top1, result.val_topk = metrics["val_top1"], metrics["val_topk"]
                best = max(best, metrics["val_top1"])
                log(
                    f"iter {done}: held-out top-1 {metrics['val_top1']:.3f}, "
                    f"top-{min(5, len(data.classes))} {metrics['val_topk']:.3f}, loss {metrics['val_loss']:.3f}",
                    enabled=say,
                )
            if row is not None:
                book.add(**row)
            if done % cfg.ckpt_every == 0 or last:
                _save(run_dir, _state(net, opt, done, cfg, data.classes, best, result), done)
                book.flush()
                if previews:
                    try:
                        preview.render(
                            net.module,
                            source.preprocess,
                            start_rgb,
                            blob,
                            run_dir / "previews" / f"iter_{done:06d}.png",
                        )
                    except Exception as e:  # noqa: BLE001 - an optional preview never stops training
                        log(f"preview skipped ({type(e).__name__}: {e})", enabled=say)
                        previews = False
            elif row is not None and done % (cfg.log_every * 10) == 0:
                book.flush()
    result.iters = cfg.max_iter
    result.wall_s = time.perf_counter() - t_start
    if d.master and cfg.max_iter > start:
        result.images_per_s = cfg.batch * (cfg.max_iter - start) / max(train_time, 1e-9)
    return result
