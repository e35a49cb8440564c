"""One visible block of training defaults, saved into every checkpoint (nanoGPT style).

The numbers follow bvlc_googlenet's quick_solver: SGD, momentum 0.9, weight decay 2e-4, poly decay
with power 0.5, batch 32 (reached by gradient accumulation on small machines), biases at twice the
rate and without decay (Caffe's lr_mult / decay_mult).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from zoo.errors import UserError

from .augment import DEFAULT_SPEC


@dataclass
class TrainConfig:
    # data
    dataset: str = ""  # folder path | arthistory | lfw
    label: str = ""  # arthistory: school|timeframe|type|author; lfw: identity|gender
    centuries: str = "1-19"  # arthistory: works dated in these centuries (default up to 1900)
    per_class: int = 500  # arthistory: at most this many paintings per class
    val_fraction: float = 0.2  # held out per class, stratified
    min_per_class: int = 2  # classes with fewer images are reported and left out
    pack_size: int = 0  # side of the stored square images; 0: input * 256/224
    augment: str = DEFAULT_SPEC
    workers: int = 2
    # model
    model: str = "bvlc_googlenet"  # a zoo model name or a deploy.prototxt path
    weights: str = ""  # with a prototxt path: its caffemodel
    like: str = ""  # with a prototxt path: the zoo model whose preprocessing it uses
    init: str = "pretrained"  # pretrained | scratch (Caffe fillers)
    freeze_to: str = ""  # freeze every layer that this blob depends on
    aux_weight: float = 0.3  # GoogLeNet's auxiliary classifiers, dropped at export
    # optimisation
    max_iter: int = 1000
    batch: int = 32  # global batch per iteration
    micro_batch: int = 32  # per forward pass; batch / (micro_batch * nproc) accumulation steps
    base_lr: float = 0.01
    lr_policy: str = "poly"  # poly | step | fixed
    power: float = 0.5
    gamma: float = 0.1
    stepsize: int = 1000
    momentum: float = 0.9
    weight_decay: float = 2e-4
    seed: int = 1337
    # run
    out: str = ""  # run directory
    name: str = ""  # the zoo model name written at export
    eval_every: int = 100
    ckpt_every: int = 100
    log_every: int = 10
    nproc: int = 1
    device: str = "auto"  # auto | cpu | cuda
    preview: bool = True  # a small dream at each checkpoint when dream/ is installed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def schedule_params(self) -> dict[str, Any]:
        return {
            "base_lr": self.base_lr,
            "max_iter": self.max_iter,
            "power": self.power,
            "gamma": self.gamma,
            "stepsize": self.stepsize,
        }


# Settings a resumed run may change without changing what it computes.
RUNTIME_ONLY = frozenset(
    {"workers", "eval_every", "ckpt_every", "log_every", "nproc", "device", "out", "name", "preview"}
)


def merge_resume(saved: dict[str, Any], given: dict[str, Any], where: str) -> TrainConfig:
    """The config of a resumed run: the checkpoint's, with runtime-only options the user gave.

    A given option that would change the computation raises a UserError naming it.
    """
    cfg = TrainConfig.from_dict(saved).to_dict()
    for key, value in given.items():
        if value is None or key not in cfg:
            continue
        if key not in RUNTIME_ONLY and value != cfg[key]:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{where}: checkpoint was trained with {flag} {cfg[key]!r}, not {value!r}")
        cfg[key] = value
    return TrainConfig.from_dict(cfg)


def validate(cfg: TrainConfig) -> None:
    """Usage problems a user can cause, as one line each."""
    if cfg.max_iter < 1:
        raise UserError(f"--max-iter {cfg.max_iter}: must be at least 1")
    if cfg.batch < 1 or cfg.micro_batch < 1:
        raise UserError("--batch and --micro-batch must be at least 1")
    per_rank, rest = divmod(cfg.batch, cfg.nproc)
    if rest or per_rank < 1:
        raise UserError(f"--batch {cfg.batch}: must be a multiple of --nproc {cfg.nproc}")
    if per_rank % min(cfg.micro_batch, per_rank):
        raise UserError(f"--batch {cfg.batch} per process ({per_rank}) is not a multiple of --micro-batch")
    if cfg.init not in ("pretrained", "scratch"):
        raise UserError(f"--init {cfg.init!r}: choose pretrained or scratch")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise UserError(f"--val-fraction {cfg.val_fraction}: must be between 0 and 1")


def accumulation(cfg: TrainConfig) -> tuple[int, int]:
    """(micro-batch size, steps) for one rank so that steps * size * nproc == batch."""
    per_rank = cfg.batch // cfg.nproc
    size = min(cfg.micro_batch, per_rank)
    return size, per_rank // size
