"""Atomic checkpoints of plain data and tensors: written to a temporary file in the run directory,
flushed, then renamed over `ckpt.pt`, so a run killed at any moment (even mid-write) leaves the
last complete checkpoint. Loaded with torch.load(weights_only=True): nothing is unpickled.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import UserError
from zoo.io import atomic_write

NAME = "ckpt.pt"


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable or from another kind of run."""


def rng_state() -> dict[str, Any]:
    """Every global random state, as tensors and plain numbers."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(run_dir: Path, state: dict[str, Any], *, die_after: int | None = None) -> Path:
    """Write `state` as run_dir/ckpt.pt atomically (zoo.io's writer). `die_after`: fault injection
    for tests, SIGKILL once that many bytes are written (the temporary file stays, as after a crash)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    dest = run_dir / NAME
    with atomic_write(dest) as f:
        if die_after is not None:
            f.write(b"partial checkpoint"[:die_after])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save(state, f)
    return dest


def load(run_dir: Path) -> dict[str, Any]:
    """The last complete checkpoint of a run (tensors and plain data only)."""
    path = Path(run_dir) / NAME
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: no checkpoint ({NAME}) to resume from")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is the user's file problem
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a zoo training checkpoint (not a table)")
    for key in ("model", "optimizer", "iter", "config", "classes"):
        if key not in state:
            raise CheckpointError(f"{path}: not a zoo training checkpoint (no {key!r})")
    for key, ok in _FIELDS.items():
        if key in state and not ok(state[key]):
            raise CheckpointError(f"{path}: not a zoo training checkpoint ({key!r} has the wrong type, "
                                  f"{type(state[key]).__name__})")
    _check_config(state["config"], path)
    return state


def _dict_of(keys: type, values: type | tuple[type, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, dict) and all(isinstance(k, keys) and isinstance(x, values) for k, x in v.items())


def _rng(v: Any) -> bool:
    try:
        n, p = v["numpy"], v["python"]
        return (isinstance(v["torch"], torch.Tensor) and isinstance(n["keys"], torch.Tensor)
                and all(isinstance(n[k], (int, float)) for k in ("pos", "has_gauss", "gauss"))
                and isinstance(p["version"], int) and isinstance(p["state"], list)
                and all(isinstance(x, int) for x in p["state"]))
    except (KeyError, TypeError, IndexError):
        return False


_FIELDS: dict[str, Callable[[Any], bool]] = {
    "model": _dict_of(str, torch.Tensor),
    "optimizer": lambda v: isinstance(v, dict) and isinstance(v.get("state"), dict)
    and isinstance(v.get("param_groups"), list) and all(isinstance(g, dict) for g in v["param_groups"]),
    "iter": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "config": lambda v: isinstance(v, dict),
    "classes": lambda v: isinstance(v, list) and bool(v) and all(isinstance(c, str) for c in v),
    "best_top1": lambda v: isinstance(v, (int, float)),
    "metrics": _dict_of(str, (int, float)),
    "rng": _rng,
    "logits": lambda v: v is None or isinstance(v, str),
    "classifier": lambda v: v is None or isinstance(v, str),
    "output": lambda v: v is None or isinstance(v, str),
    "colour_cov": lambda v: v is None or (isinstance(v, list) and len(v) == 3 and all(
        isinstance(r, list) and len(r) == 3 and all(isinstance(x, float) for x in r) for r in v)),
}


def _check_config(config: dict, path: Path) -> None:
    """Each config value of the type its TrainConfig field has (a number where a number belongs)."""
    from dataclasses import MISSING, fields

    from .config import TrainConfig

    for f in fields(TrainConfig):
        if f.name not in config or f.default is MISSING or f.default is None:
            continue
        v, want = config[f.name], type(f.default)
        ok = isinstance(v, want) and (want is bool or not isinstance(v, bool))
        if want is float:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if not ok:
            raise CheckpointError(f"{path}: not a zoo training checkpoint (config {f.name!r} should be "
                                  f"{want.__name__}, not {type(v).__name__})")


def clean_partials(run_dir: Path) -> None:
    """Remove temporary files left by a run killed while writing (zoo.io's `.NAME.*.part`, older `NAME.*.tmp`)."""
    for pattern in (f".{NAME}.*.part", NAME + ".*.tmp"):
        for p in Path(run_dir).glob(pattern):
            p.unlink(missing_ok=True)
