"""The studio's web server: a JSON API over the zoo (OpenAPI at /openapi.json, read at /docs) and the
static front end. It stays light (no torch here): dreams, atlases, fetches and training run as jobs in
the worker process; uploads are read by the CLI's own validating readers before anything is kept.

This module is only the app factory: the routes live in zoo.studio.routes (one router per area),
their shared state in zoo.studio.state (a `Studio`, reached through the `StudioDep` dependency), the
safety rules and error shapes in zoo.studio.guard.
"""

from __future__ import annotations

import contextlib

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import zoo
from zoo.studio import guard
from zoo.studio.routes import ROUTERS
from zoo.studio.routes.pages import STATIC
from zoo.studio.state import DEFAULT_LIMITS, Settings, Studio

__all__ = ["DEFAULT_LIMITS", "Settings", "create_app", "is_loopback"]
DESCRIPTION = ("Every action of the studio as a JSON endpoint. Jobs (dream, sound, strokes, journey, atlas, channels, "
               "fetch, train, export) run one at a time in a worker process; follow them with "
               "`GET /api/jobs/{id}/events` (server-sent events).")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The studio app: its state, the guard, the static files and every area's router."""
    studio = Studio(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        studio.store  # noqa: B018 (the worker starts with the server, in the environment it was started in)
        yield
        studio.close()

    app = FastAPI(title="zoo studio", version=zoo.__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description=DESCRIPTION)
    app.state.studio = studio
    guard.install(app, studio.settings)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    return app
