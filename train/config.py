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


def opt(default: Any, help: str, *flags: str, choices: type[Enum] | None = None) -> Any:  # noqa: A002
    """A config field with its `zoo train` option: help text, extra flags (-m), closed choices."""
    meta = {"help": help, "flags": flags, "choices": choices}
    return dataclasses.field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Every `zoo train` option is a field here (the CLI is generated from it: one default, one help)."""

    # data
    dataset: str = opt("", "Folder with one sub-folder per class, or arthistory, lfw.")
    label: str = opt("", "arthistory: school | timeframe | type | author; lfw: identity | gender.")
    centuries: str = opt("1-19", "arthistory: works dated in these centuries, FROM-TO (1-19: up to 1900).")
    per_class: int = opt(500, "arthistory: at most this many paintings per class.")
    val_fraction: float = opt(0.2, "Held-out share of each class (stratified).")
    min_per_class: int = opt(2, "Leave out classes with fewer images (reported).")
    pack_size: int = opt(0, "Side of the packed images (0: the net's input * 256/224).")
    augment: str = opt(DEFAULT_SPEC, "Augmentations, comma-separated (e.g. crop,hue=0.05), or none.")
    workers: int = opt(2, "DataLoader worker processes.")
    # model
    model: str = opt("bvlc_googlenet", "Zoo model or deploy.prototxt to start from.", "-m")
    weights: str = opt("", "With a prototxt --model: its caffemodel.")
    like: str = opt("", "With a prototxt --model: the zoo model whose preprocessing it uses.")
    init: str = opt("pretrained", "pretrained weights, or scratch (Caffe's fillers).", choices=Init)
    freeze_to: str = opt("", "Freeze every layer this blob depends on.")
    aux_weight: float = opt(0.3, "Loss weight of GoogLeNet's auxiliary heads (dropped at export).")
    # optimisation
    max_iter: int = opt(1000, "Iterations.")
    batch: int = opt(32, "Global batch per iteration.")
    micro_batch: int = opt(32, "Images per forward pass; gradients accumulate to --batch.")
    base_lr: float = opt(0.01, "Base learning rate.")
    lr_policy: str = opt("poly", "Learning-rate schedule.", choices=LrPolicy)
    power: float = opt(0.5, "poly: the power.")
    gamma: float = opt(0.1, "step: factor per step.")
    stepsize: int = opt(1000, "step: iterations per step.")
    momentum: float = opt(0.9, "SGD momentum.")
    weight_decay: float = opt(2e-4, "Weight decay (biases: none, as Caffe's decay_mult 0).")
    seed: int = opt(1337, "Seed of the split, order, augmentation and init.")
    # run
    out: str = opt("", "Run directory (default runs/NAME).")
    name: str = opt("", "Export the result as this zoo model at the end.")
    eval_every: int = opt(100, "Held-out evaluation every N iterations.")
    ckpt_every: int = opt(100, "Checkpoint every N iterations.")
    log_every: int = opt(10, "Log row every N iterations.")
    nproc: int = opt(1, "Processes on this machine, through torchrun.")
    device: str = opt("auto", "Where to train (auto: cuda if present).", choices=Device)
    preview: bool = opt(True, "A small dream at each checkpoint (previews/ in the run directory).")

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
    for f in fields(cfg):
        kind = f.metadata.get("choices")
        value = getattr(cfg, f.name)
        if kind is not None and value not in {c.value for c in kind}:
            flag = "--" + f.name.replace("_", "-")
            raise UserError(f"{flag} {value!r}: choose {', '.join(c.value for c in kind)}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise UserError(f"--val-fraction {cfg.val_fraction}: must be between 0 and 1")


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
