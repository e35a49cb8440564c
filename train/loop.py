"""The training run (nanoGPT-shaped): data, net, optimizer, then one loop that writes the learning
rate into the optimizer each step, accumulates gradients to the global batch, all-reduces them
across ranks, evaluates held-out top-1/top-k and checkpoints atomically every N iterations.

A run is a directory: ckpt.pt, log.csv, plot.png, previews/. `resume=True` continues from ckpt.pt
exactly: the data order, the augmentations and the dropout masks of iteration `it` depend on
(seed, rank, it) only, and the model, optimizer and random states come from the checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo import events
from zoo.events import Event, OnEvent
from zoo.io import make_dirs

from . import checkpoint, preview, sound
from .config import TrainConfig, accumulation, dataset_key, merge_resume, validate
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
    colour_cov: list[list[float]] | None = None  # RGB covariance of the training pictures (the card's colour_cov)


@dataclass
class RunResult:
    run_dir: Path
    iters: int
    classes: list[str]
    val_top1: float = float("nan")
    val_topk: float = float("nan")
    images_per_s: float = float("nan")
    wall_s: float = 0.0
    ran: int = 0  # iterations this call ran (0: a resumed run that had already finished)
    exported: Path | None = None
    stopped: bool = False  # `stop` was set: checkpointed at `iters`, resumable with --resume


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
            source, pack_notes = _source(images, side, show and d.master)
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
    return Data(source, classes, label_map, idx[tr], idx[va], notes, colour_cov(source, idx[tr]))


COLOUR_SAMPLE = 64  # training pictures the colour covariance is measured on (evenly spread, every 7th pixel)


def colour_cov(source, train_idx: np.ndarray) -> list[list[float]]:
    """The training pictures' RGB covariance, recorded so a legible dream of this brain draws its
    colours as the brain saw them (zoo.dream.params.colour_from_covariance)."""
    from zoo.dream.params import colour_covariance

    picks = np.unique(np.linspace(0, len(train_idx) - 1, min(COLOUR_SAMPLE, len(train_idx))).round().astype(int))
    cov = colour_covariance(np.asarray(source[int(train_idx[i])]) for i in picks)
    return [[float(v) for v in row] for row in (cov + cov.T) / 2]


def _source(images, side: int, show: bool):
    """Images are packed (decoded once into HDF5); sounds become spectrogram pictures in memory."""
    if images.kind == "sound":
        from .sound import SoundSource

        return SoundSource(images, side), [f"{len(images.items)} sounds as spectrogram pictures"]
    return open_or_pack(images, side, show=show)


def _iter_seed(seed: int, rank: int, it: int) -> int:
    return (seed * 1_000_003 + rank * 7_919 + it * 104_729) % (1 << 62)


def _kill_point(where: str, it: int) -> None:
    """Fault injection for tests: ZOO_TRAIN_KILL_AT=iter:N or ckpt:N sends SIGKILL to this process,
    ZOO_TRAIN_KILL_AT=sigint:N a Ctrl-C after iteration N."""
    if os.environ.get("ZOO_TRAIN_KILL_AT") == f"{where}:{it}":
        os.kill(os.getpid(), signal.SIGKILL)
    if where == "iter" and os.environ.get("ZOO_TRAIN_KILL_AT") == f"sigint:{it}":
        os.kill(os.getpid(), signal.SIGINT)


def top_k(classes: int) -> int:
    """The k of top-k: 5, fewer classes minus one (top-2 of 2 classes is always 1); 1 means none."""
    return max(1, min(5, classes - 1))


@torch.no_grad()
def evaluate(net: TrainNet, data: Data, netin: NetInput, size: tuple[int, int], micro: int, device) -> dict:
    """Held-out loss, top-1 and top-k (k = top_k(classes)) on centre crops."""
    module = net.module
    module.eval()
    ds = AugmentedImages(data.source, sound.transforms(data.source, "none", size)[1], data.label_map)
    k = top_k(len(data.classes))
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


def _state(net: TrainNet, opt, it: int, cfg: TrainConfig, classes: list[str], best: float, result,
           colour: list[list[float]] | None = None) -> dict:
    return {
        "colour_cov": colour,
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
    die = os.environ.get("ZOO_TRAIN_KILL_AT") == f"ckpt:{it}"  # die half-way through writing
    checkpoint.save(run_dir, state, die_after=8 if die else None)


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
    from zoo.train.datasets import check_exists

    check_exists(cfg.dataset)
    if (run_dir / checkpoint.NAME).exists():
        raise checkpoint.CheckpointError(
            f"{run_dir}: already has a checkpoint; add --resume to continue it or choose another --out"
        )
    if cfg.name:  # refused now, not after the whole run has trained
        from zoo.register import check_new_name

        check_new_name(cfg.name)
    validate(cfg)
    if int(os.environ.get("RANK", "0")) == 0:
        make_dirs(run_dir)  # an --out that cannot be written is one line before any data is read
    cfg.out = str(run_dir)
    cfg.dataset = dataset_key(cfg.dataset)  # absolute: the run resumes from any folder
    return cfg, None


def train(cfg: TrainConfig, *, resume_state: dict | None = None, show: bool = True,
          stop: threading.Event | None = None, on_event: OnEvent | None = None) -> RunResult:
    """Run (or continue) training as configured; rank 0 writes the run directory.

    `stop` (set from any thread, e.g. a web front end's Stop) is checked between iterations: the run
    checkpoints where it is and returns with `stopped` set, resumable exactly like a finished one.
    Progress (Event "train": iterations, loss, lr, images/s; "pack"; notes) goes to `on_event`, or,
    without one, to whoever listens through zoo.events.
    """
    d = setup(cfg.device)
    try:
        cfg.nproc = d.world
        validate(cfg)
        with events.listening(on_event) if on_event is not None else contextlib.nullcontext():
            return _train(cfg, d, resume_state, show, stop)
    finally:
        teardown(d)


def _stop_requested(stop: threading.Event | None, d: Dist) -> bool:
    """Whether to stop now; under torchrun every rank agrees (any rank's flag stops them all)."""
    if stop is None:
        return False
    flag = stop.is_set()
    if d.world > 1:
        t = torch.tensor([1.0 if flag else 0.0], device=d.device)
        torch.distributed.all_reduce(t)
        flag = bool(t.item() > 0)
    return flag


@dataclass
class Run:
    """Everything one training run holds between steps (the named steps below share it)."""

    cfg: TrainConfig
    d: Dist
    run_dir: Path
    say: bool
    source: object
    size: tuple[int, int]
    data: Data
    net: TrainNet
    opt: CaffeSGD
    params: list
    micro: int
    steps: int
    netin: NetInput
    batches: object
    book: Logbook | None
    result: RunResult
    start: int = 0
    best: float = 0.0
    last_ckpt: int | None = None
    preview_blob: str = ""
    start_rgb: np.ndarray | None = None
    window: dict = field(default_factory=dict)
    train_time: float = 0.0
    t_start: float = 0.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training, with what the user needs to continue."""

    def __init__(self, run_dir: Path, done: int, total: int, last_ckpt: int | None, every: int):
        super().__init__()
        self.run_dir, self.done, self.total, self.last_ckpt, self.every = run_dir, done, total, last_ckpt, every

    def __str__(self) -> str:
        head = f"interrupted during iteration {min(self.done + 1, self.total)} of {self.total}"
        if self.last_ckpt is None:
            return (f"{head}, before the first checkpoint (every {self.every} iterations): nothing was saved; "
                    "run the same command again to start over")
        return (f"{head}; the last checkpoint (iteration {self.last_ckpt}) is {self.run_dir / checkpoint.NAME}; "
                f"continue with: zoo train --out {self.run_dir} --resume")


def _new_window() -> dict:
    return {"loss": 0.0, "correct": 0.0, "n": 0.0, "t": 0.0}


def _open(cfg: TrainConfig, d: Dist, resume_state: dict | None, show: bool) -> Run:
    """The run directory, data, net, optimizer and loader, continued from `resume_state` if given."""
    t_start = time.perf_counter()
    run_dir = Path(cfg.out)
    say = show and d.master
    if d.master:
        make_dirs(run_dir)
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
    micro, steps = accumulation(cfg)
    run = Run(cfg, d, run_dir, say, source, size, data, net, opt, [p for g in groups for p in g["params"]], micro,
              steps, NetInput.from_preprocess(source.preprocess), None, None, RunResult(run_dir, 0, data.classes),
              window=_new_window(), t_start=t_start)
    if resume_state is not None:
        _resume(run, resume_state)
    plan = Plan(data.train_idx, cfg.batch, cfg.seed)
    ds = AugmentedImages(data.source, sound.transforms(data.source, cfg.augment, size)[0], data.label_map)
    run.batches = iter(loader(ds, BatchSampler(plan, run.start, cfg.max_iter, d.rank, d.world, micro), cfg.workers))
    run.book = Logbook(run_dir, resume_at=run.start if resume_state is not None else None) if d.master else None
    if d.master and cfg.preview and preview.available():
        run.start_rgb = preview.start_image(data.source[int(data.val_idx[0])])
        graph = net.module.graph
        run.preview_blob = preview.default_blob(graph, source.card, trained_blobs(graph, net.frozen))
    return run


def _resume(run: Run, state: dict) -> None:
    run.net.module.load_state_dict(state["model"])
    run.opt.load_state_dict(state["optimizer"])
    checkpoint.set_rng_state(state["rng"])
    run.start, run.best = int(state["iter"]), float(state.get("best_top1", 0.0))
    run.last_ckpt = run.start
    run.result.iters = run.start
    run.result.val_top1 = float(state.get("metrics", {}).get("val_top1", float("nan")))
    run.result.val_topk = float(state.get("metrics", {}).get("val_topk", float("nan")))
    if run.start >= run.cfg.max_iter:
        log(f"{run.run_dir}: already finished ({run.start} of {run.cfg.max_iter} iterations)", enabled=run.say)
    else:
        log(f"resuming {run.run_dir} at iteration {run.start}", enabled=run.say)


def _step(run: Run, it: int) -> float:
    """One iteration: rate into the optimizer, accumulated forward/backward to the global batch,
    gradients all-reduced across ranks, one SGD step. Returns the rate."""
    cfg, d, net = run.cfg, run.d, run.net
    t0 = time.perf_counter()
    lr = learning_rate(cfg.lr_policy, it, **cfg.schedule_params())
    set_lr(run.opt, lr)
    torch.manual_seed(_iter_seed(cfg.seed, d.rank, it))
    run.opt.zero_grad(set_to_none=True)
    stats = torch.zeros(2, device=d.device)
    for _ in range(run.steps):
        x, y = next(run.batches)
        x, y = run.netin(x.to(d.device, non_blocking=True)), y.to(d.device, non_blocking=True)
        logits, aux = net.forward(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        total = loss + sum((cfg.aux_weight * F.cross_entropy(a, y, reduction="sum") for a in aux), 0.0)
        (total / cfg.batch).backward()
        stats += torch.stack([loss.detach(), (logits.detach().argmax(1) == y).sum().float()])
    all_reduce_grads(run.params, d)
    if d.world > 1:
        torch.distributed.all_reduce(stats)
    run.opt.step()
    _kill_point("iter", it + 1)
    dt = time.perf_counter() - t0
    run.train_time += dt
    w = run.window
    w["loss"] += float(stats[0])
    w["correct"] += float(stats[1])
    w["n"] += cfg.batch
    w["t"] += dt
    return lr


def _log_row(run: Run, done: int, lr: float, last: bool) -> dict | None:
    """The training row every log_every iterations (and at the end), then a fresh window."""
    if not (done % run.cfg.log_every == 0 or last):
        return None
    w = run.window
    ips = w["n"] / max(w["t"], 1e-9)
    row = {"iter": done, "lr": lr, "loss": w["loss"] / w["n"], "batch_top1": w["correct"] / w["n"],
           "images_per_s": ips, "elapsed_s": time.perf_counter() - run.t_start}
    run.result.images_per_s = ips
    run.window = _new_window()
    return row


def _evaluate(run: Run, done: int, lr: float, row: dict | None) -> dict:
    metrics = evaluate(run.net, run.data, run.netin, run.size, run.micro, run.d.device)
    run.result.val_top1, run.result.val_topk = metrics["val_top1"], metrics["val_topk"]
    run.best = max(run.best, metrics["val_top1"])
    k = top_k(len(run.data.classes))
    topk = f", top-{k} {metrics['val_topk']:.3f}" if k > 1 else ""
    log(f"iter {done}: held-out top-1 {metrics['val_top1']:.3f}{topk}, loss {metrics['val_loss']:.3f}",
        enabled=run.say)
    return {**(row or {"iter": done, "lr": lr}), **metrics}


def _checkpoint(run: Run, done: int) -> None:
    """Save atomically, flush the log, render the preview (which never stops training)."""
    _save(run.run_dir, _state(run.net, run.opt, done, run.cfg, run.data.classes, run.best, run.result,
                                  run.data.colour_cov), done)
    run.last_ckpt = done
    run.book.flush()
    if not run.preview_blob:
        return
    try:
        path = run.run_dir / "previews" / f"iter_{done:06d}.png"
        preview.render(run.net.module, run.source.preprocess, run.start_rgb, run.preview_blob, path)
        events.emit(Event("record", done, run.cfg.max_iter, key=f"train {run.run_dir.name}",
                          data={"preview": str(path)}))
    except Exception as e:  # noqa: BLE001 - an optional preview never stops training
        log(f"preview skipped ({type(e).__name__}: {e})", enabled=run.say)
        run.preview_blob = ""


def _after_step(run: Run, done: int, lr: float) -> None:
    """Rank 0's bookkeeping after an iteration: log row, held-out evaluation, checkpoint."""
    cfg = run.cfg
    last = done == cfg.max_iter
    row = _log_row(run, done, lr, last)
    if done % cfg.eval_every == 0 or last:
        row = _evaluate(run, done, lr, row)
    if row is not None:
        run.book.add(**row)
        events.emit(Event("record", done, cfg.max_iter, key=f"train {run.run_dir.name}", data={"row": row}))
    if done % cfg.ckpt_every == 0 or last:
        _checkpoint(run, done)
    elif row is not None and done % (cfg.log_every * 10) == 0:
        run.book.flush()


def _train(cfg: TrainConfig, d: Dist, resume_state: dict | None, show: bool,
           stop: threading.Event | None = None) -> RunResult:
    run = _open(cfg, d, resume_state, show)
    done = run.start
    stopped = False
    try:
        with bar(cfg.max_iter, f"train {run.run_dir.name}", enabled=run.say, task="train") as advance:
            advance(run.start)
            for it in range(run.start, cfg.max_iter):
                lr = _step(run, it)
                done = it + 1
                w = run.window
                ips = w["n"] / max(w["t"], 1e-9)
                advance(1, info=f"loss {w['loss'] / max(w['n'], 1):.3f} lr {lr:.1e} {ips:.0f} img/s")
                if d.master:
                    _after_step(run, done, lr)
                if done < cfg.max_iter and _stop_requested(stop, d):
                    stopped = True
                    break
        if stopped and d.master and run.last_ckpt != done:
            _checkpoint(run, done)
    except KeyboardInterrupt:
        raise Interrupted(run.run_dir, done, cfg.max_iter, run.last_ckpt, cfg.ckpt_every) from None
    result = run.result
    result.iters = done if stopped else cfg.max_iter
    result.stopped = stopped
    if stopped:
        log(f"stopped after iteration {done} of {cfg.max_iter}; checkpoint {run.run_dir / checkpoint.NAME}; "
            f"continue with: zoo train --out {run.run_dir} --resume", enabled=run.say)
    result.ran = max(0, result.iters - run.start)
    result.wall_s = time.perf_counter() - run.t_start
    if d.master and result.ran:
        result.images_per_s = cfg.batch * result.ran / max(run.train_time, 1e-9)
    return result
