"""The studio's routes, one APIRouter per area; the app factory (zoo.studio.app) includes them all."""

from __future__ import annotations

from zoo.studio.routes import atlas, brains, channels, dream, files, jobs, media, pages, train

ROUTERS = [pages.router, files.router, brains.router, dream.router, atlas.router, channels.router, train.router,
           jobs.router, media.router]
