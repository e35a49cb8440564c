"""The studio's shared state, handed to every route through a FastAPI dependency (`StudioDep`).

One `Studio` per app: its settings, the folders it may read, and the job store (the worker process,
started once, lazily: a test app that never runs a job never starts one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from zoo.errors import UserError
from zoo.studio.paths import Folders, studio_file
from zoo.studio.worker import JobStore

MB = 1 << 20
DEFAULT_LIMITS = {"image": 64 * MB, "prototxt": 4 * MB, "weights": 2048 * MB, "mean": 64 * MB, "labels": 4 * MB,
                  "png": 64 * MB, "sound": 512 * MB, "svg": 32 * MB}
UPLOAD_KINDS = tuple(DEFAULT_LIMITS)


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None  # required on every request when set (any host but loopback)
    folders: list[Path] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    start_worker: bool = True
    warm: bool = True  # the worker loads the last brain (and runs one tiny step) before the first job

    def allowed_hosts(self) -> set[str]:
        return {f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]")}


class Studio:
    """What the routes share: settings, readable folders and the job store."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.folders = Folders([Path(f).resolve() for f in settings.folders])
        self._store: JobStore | None = None

    @property
    def store(self) -> JobStore:
        """The worker's job store; the worker starts with the server (the lifespan asks for it)."""
        if self._store is None:
            self._store = JobStore(start_worker=self.settings.start_worker, warm=self.settings.warm)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def job(self, job_id: str):
        """A job by id, or 404."""
        j = self.store.get(job_id)
        if j is None:
            raise HTTPException(404, f"no job {job_id}")
        return j

    def picture(self, ref: str) -> Path:
        """A studio file (uploads/…, outputs/…) or an absolute path inside a folder named with --folder."""
        if Path(ref).is_absolute():
            path = self.folders.check(ref)
            if not path.is_file():
                raise UserError(f"{ref}: no such file")
            return path
        return studio_file(ref, ("uploads", "outputs"))


def get_studio(request: Request) -> Studio:
    return request.app.state.studio


StudioDep = Annotated[Studio, Depends(get_studio)]
