"""Training: the datasets the studio may read, queueing `zoo train` and `zoo export`, the runs."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import APIRouter

from zoo.errors import UserError
from zoo.studio.models import ExportRequest, TrainRequest
from zoo.studio.paths import area, safe_name
from zoo.studio.state import Studio, StudioDep

router = APIRouter(tags=["train"])
BUILTIN = ("arthistory", "lfw")
RESUMABLE = ("eval_every", "ckpt_every", "log_every", "workers", "preview", "name", "resume")


@router.get("/api/datasets")
def datasets(studio: StudioDep) -> dict:
    """The folders the studio may read (named with --folder), their class sub-folders, and the datasets
    inside them: every folder (the root or one up to two levels below it) whose sub-folders hold images."""
    out = []
    for root in studio.folders.roots:
        subs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        out.append({"path": str(root), "classes": subs, "datasets": find_datasets(root)})
    return {"folders": out, "builtin": list(BUILTIN)}


@router.post("/api/train")
def train(req: TrainRequest, studio: StudioDep) -> dict:
    """Queue `zoo train` (or `--resume`) into runs/RUN; with `name`, exported into the zoo at the end."""
    run = safe_name(req.run, "run")
    out = area("runs") / run
    spec = {k: v for k, v in req.model_dump().items() if v is not None and k != "run"}
    if req.resume:
        if not (out / "ckpt.pt").is_file():
            raise UserError(f"run {run}: has no checkpoint to resume")
        spec = {k: v for k, v in spec.items() if k in RESUMABLE}
    else:
        spec.update(_fresh(req, studio, out))
    if req.name:
        from zoo.register import check_new_name

        check_new_name(req.name)
    spec["out"] = str(out)
    return studio.store.submit("train", spec, f"train {run}" + (" (resume)" if req.resume else "")).public()


def _fresh(req: TrainRequest, studio: Studio, out: Path) -> dict:
    """Checks of a new run (a dataset, a known model, no checkpoint yet); the dataset as a full path."""
    from zoo.registry import get_card

    if not req.dataset:
        raise UserError("give a dataset (a class-folder path, arthistory or lfw)")
    changed = {}
    if req.dataset not in BUILTIN:
        changed["dataset"] = str(studio.folders.check(req.dataset))
        if not Path(changed["dataset"]).is_dir():
            raise UserError(f"{req.dataset}: not a folder")
    if req.model:
        get_card(req.model)
    if (out / "ckpt.pt").exists():
        raise UserError(f"run {out.name}: already has a checkpoint; resume it or choose another name")
    return changed


@router.post("/api/runs/{run}/export")
def export(run: str, req: ExportRequest, studio: StudioDep) -> dict:
    """`zoo export RUN --name NAME` as a job."""
    from zoo.register import check_new_name

    d = area("runs") / safe_name(run)
    if not (d / "ckpt.pt").is_file():
        raise UserError(f"run {run}: has no checkpoint to export")
    check_new_name(req.name)
    return studio.store.submit("export", {"run": str(d), "name": req.name}, f"export {run} as {req.name}").public()


@router.get("/api/runs")
def runs() -> list[dict]:
    """The studio's training runs: iterations logged, last metrics, checkpoint previews."""
    from zoo.studio.jobs import _read_log

    out = []
    for d in sorted(area("runs").iterdir()):
        if d.is_dir():
            rows = _read_log(d / "log.csv")
            previews = sorted(f"runs/{d.name}/previews/{p.name}" for p in (d / "previews").glob("*.png"))
            out.append({"run": d.name, "rows": rows, "checkpoint": (d / "ckpt.pt").is_file(), "previews": previews})
    return out


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
MAX_SCANNED = 400  # folders looked at under one --folder (a page list, not a crawl)


def find_datasets(root: Path, depth: int = 2) -> list[dict]:
    """Class-folder datasets in `root`: it and its sub-folders down to `depth`, each with the classes
    (sub-folders holding at least one image) it would train on; symlinks are not followed."""
    found, queue, seen = [], [(root, 0)], 0
    while queue and seen < MAX_SCANNED:
        folder, level = queue.pop(0)
        seen += 1
        subs = _subfolders(folder)
        classes = [p.name for p in subs if _has_image(p)]
        if classes:
            found.append({"path": str(folder), "classes": classes})
        if level < depth:
            queue += [(p, level + 1) for p in subs if p.name not in classes]
    return found


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))
    except OSError:
        return []


def _has_image(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file() for e in entries)
    except OSError:
        return False
