"""Caffe's learning-rate policies as pure functions of the iteration.

The loop writes `learning_rate(config, it)` into the optimizer every step (nanoGPT style), so there
is no scheduler object whose state could drift from the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo.errors import UserError


def poly(it: int, *, base_lr: float, max_iter: int, power: float = 0.5, **_: Any) -> float:
    """bvlc_googlenet's quick_solver: base_lr * (1 - it/max_iter) ^ power, 0 from max_iter on."""
    if it >= max_iter:
        return 0.0
    return base_lr * (1.0 - it / max_iter) ** power


def step(it: int, *, base_lr: float, gamma: float = 0.1, stepsize: int = 1000, **_: Any) -> float:
    """Caffe "step": base_lr * gamma ^ floor(it / stepsize) (DIGITS' default)."""
    return base_lr * gamma ** (it // max(1, stepsize))


def fixed(it: int, *, base_lr: float, **_: Any) -> float:
    """Caffe "fixed": always base_lr."""
    return base_lr


POLICIES: dict[str, Callable[..., float]] = {"poly": poly, "step": step, "fixed": fixed}


def learning_rate(policy: str, it: int, **params: Any) -> float:
    """The rate at iteration `it` under a named policy (params: base_lr, max_iter, power, gamma, stepsize)."""
    try:
        fn = POLICIES[policy]
    except KeyError:
        raise UserError(f"lr policy {policy!r}: unknown (choose from {', '.join(POLICIES)})") from None
    return fn(it, **params)
