"""The page, the API docs page and the health check."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

import zoo
from zoo.studio import paths
from zoo.studio.state import StudioDep

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter()


@router.get("/", include_in_schema=False)
def index():
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@router.get("/docs", include_in_schema=False)
def docs():
    return FileResponse(STATIC / "docs.html")


@router.get("/api/health", tags=["studio"])
def health(studio: StudioDep) -> dict:
    """The studio is up; its version, $ZOO_HOME, the folders it may read, and whether the worker has
    warmed up (torch imported and the last brain loaded: a dream then starts at once)."""
    health = studio.store.health()
    return {"ok": not studio.settings.start_worker or health["worker"], "version": zoo.__version__,
            "home": str(paths.zoo_home()), "folders": [str(f) for f in studio.folders.roots], **health}
