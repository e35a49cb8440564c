"""One visible block of training defaults, saved into every checkpoint (nanoGPT style).

The numbers follow bvlc_googlenet's quick_solver: SGD, momentum 0.9, weight decay 2e-4, poly decay
with power 0.5, batch 32 (reached by gradient accumulation on small machines), biases at twice the
rate and without decay (Caffe's lr_mult / decay_mult).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from enum import Enum
from pathlib import Path
from typing import Any

from zoo.errors import UserError
from zoo.options import Group, Option, name_rule
from zoo.seeds import SEED_MAX

DEFAULT_SPEC = "crop,mirror,brightness,contrast,saturation,hue,lighting"  # see augment.build


class Init(str, Enum):
    pretrained = "pretrained"
    scratch = "scratch"


class LrPolicy(str, Enum):
    poly = "poly"
    step = "step"
    fixed = "fixed"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def opt(default: Any, help: str, *flags: str, choices: type[Enum] | None = None, **limits: Any) -> Any:  # noqa: A002
    """A config field with its `zoo train` option: help text, extra flags (-m), closed choices, and the
    limits of zoo.options.Option (lo, hi, above, below, max_len, pattern, says): TRAIN is built from these."""
    meta = {"help": help, "flags": flags, "choices": choices, "limits": limits}
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every `zoo train` option is a field here (the CLI is generated from it: one default, one help)."""

    # data
    dataset: str = opt("", "Folder with one sub-folder per class, or arthistory, lfw.", max_len=4096)
    label: str = opt("", "arthistory: school | timeframe | type | author; lfw: identity | gender.", max_len=100)
    centuries: str = opt("1-19", "arthistory: works dated in these centuries, FROM-TO (1-19: up to 1900).",
                         max_len=20)
    per_class: int = opt(500, "arthistory: at most this many paintings per class.", lo=1, hi=10**6)
    val_fraction: float = opt(0.2, "Held-out share of each class (stratified).", lo=0.0, hi=1.0, above=True,
                              below=True)
    min_per_class: int = opt(2, "Leave out classes with fewer images (reported).", lo=1, hi=10**6)
    pack_size: int = opt(0, "Side of the packed images (0: the net's input * 256/224).", lo=0, hi=4096)
    augment: str = opt(DEFAULT_SPEC, "Augmentations, comma-separated (e.g. crop,hue=0.05), or none.", max_len=1000)
    workers: int = opt(2, "DataLoader worker processes.", lo=0, hi=64)
    # model
    model: str = opt("bvlc_googlenet", "Zoo model or deploy.prototxt to start from.", "-m", max_len=4096)
    weights: str = opt("", "With a prototxt --model: its caffemodel.", max_len=4096)
    like: str = opt("", "With a prototxt --model: the zoo model whose preprocessing it uses.", max_len=200)
    init: str = opt("pretrained", "pretrained weights, or scratch (Caffe's fillers).", choices=Init)
    freeze_to: str = opt("", "Freeze every layer this blob depends on.", max_len=500)
    aux_weight: float = opt(0.3, "Loss weight of GoogLeNet's auxiliary heads (dropped at export).", lo=0.0, hi=100.0)
    # optimisation
    max_iter: int = opt(1000, "Iterations.", lo=1, hi=10**9)
    batch: int = opt(32, "Global batch per iteration.", lo=1, hi=1 << 16)
    micro_batch: int = opt(32, "Images per forward pass; gradients accumulate to --batch.", lo=1, hi=1 << 16)
    base_lr: float = opt(0.01, "Base learning rate.", lo=0.0, hi=100.0, above=True)
    lr_policy: str = opt("poly", "Learning-rate schedule.", choices=LrPolicy)
    power: float = opt(0.5, "poly: the power.", lo=0.0, hi=100.0)
    gamma: float = opt(0.1, "step: factor per step.", lo=0.0, hi=100.0)
    stepsize: int = opt(1000, "step: iterations per step.", lo=1, hi=10**9)
    momentum: float = opt(0.9, "SGD momentum.", lo=0.0, hi=1.0, below=True)
    weight_decay: float = opt(2e-4, "Weight decay (biases: none, as Caffe's decay_mult 0).", lo=0.0, hi=1.0)
    seed: int = opt(1337, "Seed of the split, order, augmentation and init.", lo=0, hi=SEED_MAX)
    # run
    out: str = opt("", "Run directory (default runs/NAME).", max_len=4096)
    name: str = opt("", "Export the result as this zoo model at the end.", **name_rule(optional=True))
    eval_every: int = opt(100, "Held-out evaluation every N iterations.", lo=1, hi=10**9)
    ckpt_every: int = opt(100, "Checkpoint every N iterations.", lo=1, hi=10**9)
    log_every: int = opt(10, "Log row every N iterations.", lo=1, hi=10**9)
    nproc: int = opt(1, "Processes on this machine, through torchrun.", lo=1, hi=1024)
    device: str = opt("auto", "Where to train (auto: cuda if present).", choices=Device)
    preview: bool = opt(True, "A small dream at each checkpoint (previews/ in the run directory).", negatable=True)

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
        same = dataset_key(value) == dataset_key(cfg[key]) if key == "dataset" else value == cfg[key]
        if key not in RUNTIME_ONLY and not same:
            flag = "--" + key.replace("_", "-")
            raise UserError(f"{where}: checkpoint was trained with {flag} {cfg[key]!r}, not {value!r}")
        if key in RUNTIME_ONLY:
            cfg[key] = value
    return TrainConfig.from_dict(cfg)


def _option(f: dataclasses.Field) -> Option:
    """A TrainConfig field as its Option (its limits from `opt`)."""
    meta = f.metadata
    kind = {"str": str, "int": int, "float": float, "bool": bool}[f.type] if isinstance(f.type, str) else f.type
    flag = "--" + f.name.replace("_", "-")
    return Option(f.name, kind, f.default, meta["help"], flags=(flag, *meta["flags"]),
                  choices=tuple(c.value for c in meta["choices"] or ()), **meta["limits"])


TRAIN = Group(tuple(_option(f) for f in fields(TrainConfig)))
"""Every `zoo train` option: the CLI, the studio's TrainRequest and `validate` are generated from it."""


def validate(cfg: TrainConfig) -> None:
    """Usage problems a user can cause, as one line each: each field by its option, then how they fit."""
    for o in TRAIN:
        o.check(getattr(cfg, o.name))
    per_rank, rest = divmod(cfg.batch, cfg.nproc)
    if rest or per_rank < 1:
        raise UserError(f"--batch {cfg.batch}: must be a multiple of --nproc {cfg.nproc}")
    if per_rank % min(cfg.micro_batch, per_rank):
        raise UserError(f"--batch {cfg.batch} per process ({per_rank}) is not a multiple of --micro-batch")


def dataset_key(dataset: str) -> str:
    """A class-folder dataset as its absolute path (so a run resumes from any folder, given either
    form); named datasets (arthistory, lfw) as they are."""
    path = Path(dataset).expanduser()
    return str(path.resolve()) if dataset and path.is_dir() else dataset


def accumulation(cfg: TrainConfig) -> tuple[int, int]:
    """(micro-batch size, steps) for one rank so that steps * size * nproc == batch."""
    per_rank = cfg.batch // cfg.nproc
    size = min(cfg.micro_batch, per_rank)
    return size, per_rank // size
