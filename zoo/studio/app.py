"""The studio's web server: a JSON API over the zoo (OpenAPI at /openapi.json, read at /docs) and the
static front end. It stays light (no torch here): dreams, atlases, fetches and training run as jobs in
the worker process; uploads are read by the CLI's own validating readers before anything is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

import zoo
from zoo.errors import UserError
from zoo.studio import paths
from zoo.studio.paths import Folders, area, ref_of, safe_name, studio_dir, studio_file
from zoo.studio.worker import FINISHED, JobStore

STATIC = Path(__file__).parent / "static"
COOKIE = "zoo_studio_token"
MB = 1 << 20
DEFAULT_LIMITS = {"image": 64 * MB, "prototxt": 4 * MB, "weights": 2048 * MB, "mean": 64 * MB, "labels": 4 * MB,
                  "png": 64 * MB}
UPLOAD_KINDS = tuple(DEFAULT_LIMITS)
TOKEN_FREE = ("/favicon.ico",)


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


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# --- request bodies -------------------------------------------------------------------------------


class DreamRequest(BaseModel):
    """A dream: the fields of `zoo dream` (files are studio references such as uploads/…/photo.png)."""

    input: str | None = Field(None, description="start image: a studio file (uploads/… or outputs/…) or an "
                              "absolute path in a folder named with --folder")
    init: str = Field("image", description="image | noise[:SPREAD] | gradient[:DEG] | color[:#RRGGBB]")
    model: str | None = Field(None, description="a zoo model name (default: the default brain)")
    layers: list[str] = Field(default_factory=list, description="BLOB, BLOB:CH[,CH..], BLOB:LABEL or BLOB:CH@Y,X")
    weights: list[float] = Field(default_factory=list, description="one per layer, default 1")
    guide: str | None = Field(None, description="guide image: a studio file")
    octaves: int | None = Field(None, ge=1, le=32)
    octave_scale: float | None = Field(None, ge=1.0, le=4.0)
    iterations: int | None = Field(None, ge=1, le=10000)
    step: float | None = Field(None, ge=0.0)
    jitter: int | None = Field(None, ge=0)
    tile: int | None = Field(None, ge=16)
    size: str | None = Field(None, description="W or WxH: scale the input first")
    seed: int = 0
    preset: str | None = None
    device: Literal["cpu", "cuda"] = "cpu"


class AtlasRequest(BaseModel):
    model: str
    start: str = Field("noise", description="noise | gradient | color[:#RRGGBB]")
    size: int = Field(128, ge=16, le=4096)
    octaves: int = Field(2, ge=1, le=32)
    iterations: int = Field(5, ge=1, le=10000)
    step: float = Field(1.5, ge=0.0)
    seed: int = 0
    blobs: list[str] = Field(default_factory=list, description="default: every dreamable blob")
    device: Literal["cpu", "cuda"] = "cpu"


class ImportRequest(BaseModel):
    """`zoo convert --name`: uploaded Caffe files registered as a zoo model."""

    name: str
    prototxt: str = Field(description="an uploaded prototxt (uploads/…)")
    weights: str = Field(description="an uploaded caffemodel (uploads/…)")
    mean: str | None = Field(None, description="an uploaded mean.binaryproto")
    labels: str | None = Field(None, description="an uploaded labels file, one class per line")
    mean_pixel: list[float] | None = Field(None, min_length=1, max_length=4)
    channel_order: Literal["BGR", "RGB"] | None = None
    scale: float | None = None


class TrainRequest(BaseModel):
    """`zoo train` into a studio run folder; with `name`, exported as that zoo model at the end."""

    run: str = Field(description="run name (a folder under the studio's runs/)")
    dataset: str | None = Field(None, description="a class-folder path inside a --folder, or arthistory, lfw")
    model: str | None = None
    label: str | None = None
    max_iter: int | None = Field(None, ge=1)
    batch: int | None = Field(None, ge=1)
    micro_batch: int | None = Field(None, ge=1)
    base_lr: float | None = Field(None, gt=0)
    lr_policy: Literal["poly", "step", "fixed"] | None = None
    augment: str | None = None
    init: Literal["pretrained", "scratch"] | None = None
    freeze_to: str | None = None
    eval_every: int | None = Field(None, ge=1)
    ckpt_every: int | None = Field(None, ge=1)
    log_every: int | None = Field(None, ge=1)
    workers: int | None = Field(None, ge=0, le=16)
    seed: int | None = None
    preview: bool | None = None
    name: str | None = Field(None, description="export as this zoo model when done")
    resume: bool = False


class ExportRequest(BaseModel):
    name: str


# --- the app --------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or Settings()
    folders = Folders([Path(f).resolve() for f in s.folders])
    state: dict[str, JobStore] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        store()  # the worker starts with the server, in the environment it was started in
        yield
        if "store" in state:
            state["store"].close()

    app = FastAPI(title="zoo studio", version=zoo.__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Every action of the studio as a JSON endpoint. Jobs (dream, atlas, fetch, train, "
                              "export) run one at a time in a worker process; follow them with "
                              "`GET /api/jobs/{id}/events` (server-sent events).")

    def store() -> JobStore:
        if "store" not in state:
            state["store"] = JobStore(start_worker=s.start_worker, warm=s.warm)
        return state["store"]

    app.state.store = store
    app.state.settings = s

    # --- safety: same origin only, the right Host, the token -------------------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host", "")
        origin = request.headers.get("origin")
        if s.token is None and host not in s.allowed_hosts():
            return error(403, f"host {host!r} is not this studio (open http://127.0.0.1:{s.port}/)")
        if origin is not None and origin != f"http://{host}":
            return error(403, f"cross-origin request refused (origin {origin})")
        if request.headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return error(403, "cross-origin request refused")
        if s.token is not None and request.url.path not in TOKEN_FREE:
            given = request.query_params.get("token")
            auth = request.headers.get("authorization", "")
            candidates = [given, auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None,
                          request.cookies.get(COOKIE)]
            if not any(c and hmac.compare_digest(c, s.token) for c in candidates):
                return error(401, "this studio needs its token (printed when it started): open the URL it printed")
            if given and request.method == "GET" and request.url.path == "/":
                resp = RedirectResponse("/", status_code=303)
                resp.set_cookie(COOKIE, s.token, httponly=True, samesite="strict")
                return resp
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path == "/" or request.url.path.endswith(".html"):
            response.headers.setdefault("Content-Security-Policy",
                                        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
        return response

    @app.exception_handler(UserError)
    async def user_error(request: Request, e: UserError):
        return error(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        detail = str(e.detail)
        if detail in ("Not Found", "Method Not Allowed"):
            detail = f"{request.method} {request.url.path}: {detail.lower()}"
        return error(e.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return error(422, f"{where or 'request'}: {first.get('msg', 'invalid')}")

    # --- pages ---------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/docs", include_in_schema=False)
    def docs():
        return FileResponse(STATIC / "docs.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", tags=["studio"])
    def health() -> dict:
        """The studio is up; its version, $ZOO_HOME, the folders it may read, and whether the worker has
        warmed up (torch imported and the last brain loaded: a dream then starts at once)."""
        return {"ok": True, "version": zoo.__version__, "home": str(paths.zoo_home()),
                "folders": [str(f) for f in folders.roots], "worker": store().process is not None,
                "warm": store().ready}

    # --- uploads -------------------------------------------------------------------------------

    @app.post("/api/uploads", tags=["files"])
    async def upload(request: Request, kind: Literal[UPLOAD_KINDS] = Query(...),  # type: ignore[valid-type]
                     filename: str = Query(..., max_length=200)) -> dict:
        """Upload one file as the raw request body; it is read by the CLI's reader for its kind
        (image, prototxt, weights, mean, labels) and kept only if that reader accepts it."""
        limit = s.limits[kind]
        length = request.headers.get("content-length")
        name = safe_name(filename, kind)
        if length is not None and length.isdigit() and int(length) > limit:
            return error(413, f"{name}: too large ({int(length)} bytes; the limit for a {kind} is {limit} bytes)")
        tmp = area("tmp") / f"{uuid.uuid4().hex}-{name}"
        h, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise _TooLarge
                    h.update(chunk)
                    f.write(chunk)
            if size == 0:
                raise UserError(f"{name}: empty file")
            info = await asyncio.to_thread(_validate, kind, tmp, name)
            digest = h.hexdigest()
            dest = area("uploads") / digest[:16] / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        except _TooLarge:
            return error(413, f"{name}: too large (more than {limit} bytes, the limit for a {kind})")
        except UserError as e:
            return error(400, str(e).replace(str(tmp), name))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return {"ref": ref_of(dest), "name": name, "kind": kind, "sha256": digest, "bytes": size, **info}

    @app.post("/api/recipe", tags=["files"])
    async def recipe_of(request: Request) -> dict:
        """The recipe carried by a zoo PNG (the raw body): what dropping a PNG onto the page reads."""
        body = await request.body()
        if len(body) > s.limits["png"]:
            return error(413, f"PNG too large (the limit is {s.limits['png']} bytes)")
        tmp = area("tmp") / f"{uuid.uuid4().hex}.png"
        try:
            tmp.write_bytes(body)
            from zoo.dream.recipe import read_recipe

            rec = read_recipe(tmp)
        except UserError as e:
            return error(400, str(e).replace(str(tmp), "dropped file"))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        data = json.loads(rec.to_json())
        data["input_ref"] = _ref_or_none(rec.input)
        data["guide_ref"] = _ref_or_none(rec.guide)
        return {"recipe": data, "command": rec.command()}

    @app.get("/api/files/{ref:path}", tags=["files"])
    def file(ref: str, format: Literal["png", "jpeg", "tiff"] | None = None, thumb: int | None = Query(None, ge=16,
             le=1024)):
        """A studio file (uploads, outputs, atlases, runs); `format` converts a picture for download,
        `thumb` gives a small JPEG."""
        path = studio_file(ref, ("uploads", "outputs", "atlases", "runs"))
        if thumb:
            return Response(_thumbnail(path, thumb), media_type="image/jpeg", headers={"Cache-Control": "max-age=60"})
        if format:
            return _converted(path, format)
        return FileResponse(path)

    # --- brains --------------------------------------------------------------------------------

    @app.get("/api/brains", tags=["brains"])
    def brains() -> list[dict]:
        """Every model of the zoo with its card: license, origin, preprocessing, size, cached or not."""
        from zoo.registry import load_registry

        reg = load_registry()
        return [_card_json(reg.get(n)) for n in reg.names()]

    @app.get("/api/brains/{name}", tags=["brains"])
    def brain(name: str) -> dict:
        """One model: its card, dreamable blobs (with shape, channels and atlas thumbnail) and class outputs."""
        from zoo.registry import get_card

        card = get_card(name)
        out = _card_json(card)
        atlas = _atlas_index(card.name)
        thumbs = {e["blob"]: f"atlases/{card.name}/{e['file']}" for e in (atlas or {}).get("entries", [])}
        out["blobs"] = [{"name": b.name, "shape": list(b.shape), "channels": b.shape[0] if b.shape else 0,
                         "produces": b.produces, "atlas": thumbs.get(b.name)} for b in card.dream_blobs]
        if not out["blobs"]:
            g = _graph_or_none(card)
            if g is not None:
                shapes = g.shapes()
                out["blobs"] = [{"name": b, "shape": list(shapes[b][1:]), "channels": shapes[b][1], "produces": "",
                                 "atlas": thumbs.get(b)} for b in g.blob_names
                                if b not in g.inputs and len(shapes[b]) == 4 and shapes[b][2] * shapes[b][3] > 1]
        return out

    @app.get("/api/brains/{name}/labels", tags=["brains"])
    def labels(name: str, q: str = Query("", max_length=100), limit: int = Query(50, ge=1, le=5000)) -> dict:
        """Class labels of a model (for objectives such as prob:LABEL), filtered by a search text."""
        from zoo import api, cache
        from zoo.registry import get_card

        card = get_card(name)
        if not cache.is_cached(card) and not card.builtin:
            return {"model": card.name, "output": card.output, "labels": [], "total": 0}
        try:
            names = api.labels_for(card, {r: cache.file_path(card, r) for r in card.files})
        except (UserError, OSError):
            names = []
        hits = [(i, n) for i, n in enumerate(names) if q.lower() in n.lower()]
        return {"model": card.name, "output": card.output, "total": len(names),
                "labels": [{"index": i, "label": n} for i, n in hits[:limit]]}

    @app.get("/api/brains/{name}/graph", tags=["brains"])
    def graph(name: str, width: int = Query(0, ge=0, le=20000), height: int = Query(0, ge=0, le=20000)) -> dict:
        """The network as layers (boxes) and blobs (edges) with their shapes at the given image size."""
        from zoo.registry import get_card

        card = get_card(name)
        g = _graph_or_none(card)
        if g is None:
            raise UserError(f"model {name} is not cached; fetch it first (zoo fetch {name})")
        return _graph_json(g, card, (height or card.input_size[0], width or card.input_size[1]))

    @app.post("/api/brains/{name}/fetch", tags=["brains"])
    def fetch(name: str) -> dict:
        """`zoo fetch NAME` as a job (checksummed download, then the ONNX)."""
        from zoo.registry import get_card

        card = get_card(name)
        return store().submit("fetch", {"model": card.name}, f"fetch {card.name}").public()

    @app.delete("/api/brains/{name}", tags=["brains"])
    def remove(name: str) -> dict:
        """`zoo remove NAME`: delete the cached files (and a user-registered model's entry)."""
        from zoo.register import remove_model

        unregistered = remove_model(name)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(area("atlases") / safe_name(name))
        return {"removed": name, "unregistered": unregistered}

    @app.post("/api/brains/import", tags=["brains"])
    def import_brain(req: ImportRequest) -> dict:
        """`zoo convert --name`: read the uploaded prototxt and caffemodel with the converter and register
        them as a zoo model (preprocessing from the fields given, else Caffe's ImageNet convention)."""
        from zoo import convert
        from zoo.register import check_new_name, register_converted

        check_new_name(req.name)

        proto = studio_file(req.prototxt, ("uploads",))
        weights = studio_file(req.weights, ("uploads",))
        mean = studio_file(req.mean, ("uploads",)) if req.mean else None
        labels = None
        if req.labels:
            labels = _read_labels(studio_file(req.labels, ("uploads",)))
        graph = convert.load_net(proto, weights, mean=mean)
        preprocess = {"mean": req.mean_pixel, "scale": req.scale, "channel_order": req.channel_order}
        register_converted(req.name, prototxt=proto, weights=weights, mean=mean, graph=graph, preprocess=preprocess,
                           labels=labels)
        from zoo.registry import get_card

        return _card_json(get_card(req.name))

    # --- dream, atlas --------------------------------------------------------------------------

    @app.get("/api/presets", tags=["dream"])
    def presets() -> dict:
        """The named parameter sets of `zoo dream --preset`, and the kinds of start."""
        from zoo.dream.presets import PRESETS
        from zoo.dream.starts import KINDS

        return {"presets": {k: {"params": p.params.to_dict(), "model": p.model, "layer": p.layer,
                                "description": p.description} for k, p in PRESETS.items()}, "starts": list(KINDS)}

    @app.post("/api/dream", tags=["dream"])
    def dream(req: DreamRequest) -> dict:
        """Queue a dream (what `zoo dream` runs); the result PNG in outputs/ carries its recipe."""
        from zoo.dream import geometry, starts
        from zoo.dream.presets import get_preset
        from zoo.registry import get_card

        kind, _ = starts.parse_init(req.init)
        if req.preset:
            get_preset(req.preset)
        if req.model:
            get_card(req.model)
        inp = picture(req.input) if req.input else None
        if kind == "image" and inp is None:
            raise UserError("no input image given (or use --init noise|gradient|color)")
        guide = picture(req.guide) if req.guide else None
        if req.size:
            try:
                geometry.scaled_size(100, 100, req.size)
            except ValueError as e:
                raise UserError(f"--size: {e}") from None
        if len(req.weights) > len(req.layers):
            raise UserError("more weights than layers")
        out = area("outputs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.png"
        spec = {**req.model_dump(), "input": str(inp) if inp else None, "guide": str(guide) if guide else None,
                "output": str(out)}
        title = f"dream {req.model or 'default'} {' '.join(req.layers)}".strip()
        return store().submit("dream", spec, title).public()

    @app.post("/api/atlas", tags=["atlas"])
    def atlas(req: AtlasRequest) -> dict:
        """Queue `zoo atlas` for a brain into atlases/MODEL (progress per blob)."""
        from zoo.dream import starts
        from zoo.registry import get_card

        card = get_card(req.model)
        kind, _ = starts.parse_init(req.start)
        if kind == "image":
            raise UserError("--start: the studio renders atlases from noise, gradient or color")
        spec = {**req.model_dump(), "output": str(area("atlases") / safe_name(card.name))}
        return store().submit("atlas", spec, f"atlas {card.name}").public()

    @app.get("/api/atlases", tags=["atlas"])
    def atlases() -> list[dict]:
        """The stored atlases (one per brain)."""
        out = []
        for d in sorted(area("atlases").iterdir()):
            index = _atlas_index(d.name)
            if index:
                out.append({"model": index["model"], "sheet": f"atlases/{d.name}/atlas.png",
                            "page": f"atlases/{d.name}/index.html", "entries": len(index["entries"]),
                            "command": index["command"]})
        return out

    @app.get("/api/atlases/{model}", tags=["atlas"])
    def atlas_of(model: str) -> dict:
        index = _atlas_index(safe_name(model))
        if index is None:
            raise HTTPException(404, f"no atlas of {model} yet")
        d = f"atlases/{safe_name(model)}"
        return {**index, "sheet": f"{d}/atlas.png",
                "entries": [{**e, "ref": f"{d}/{e['file']}"} for e in index["entries"]]}

    # --- gallery -------------------------------------------------------------------------------

    @app.get("/api/gallery", tags=["gallery"])
    def gallery() -> list[dict]:
        """Every dream the studio made, newest first, with its recipe."""
        from zoo.dream.recipe import read_recipe

        out = []
        for p in sorted(area("outputs").glob("*.png"), reverse=True):
            try:
                rec = read_recipe(p)
            except UserError:
                continue
            out.append({"ref": ref_of(p), "name": p.name, "recipe": json.loads(rec.to_json()),
                        "input_ref": _ref_or_none(rec.input), "guide_ref": _ref_or_none(rec.guide),
                        "command": rec.command(p.name), "bytes": p.stat().st_size})
        return out

    @app.delete("/api/gallery/{name}", tags=["gallery"])
    def delete_output(name: str) -> dict:
        path = studio_file(f"outputs/{safe_name(name)}", ("outputs",))
        path.unlink()
        return {"removed": name}

    # --- training ------------------------------------------------------------------------------

    @app.get("/api/datasets", tags=["train"])
    def datasets() -> dict:
        """The folders the studio may read (named with --folder) and their class sub-folders."""
        out = []
        for root in folders.roots:
            subs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
            out.append({"path": str(root), "classes": subs})
        return {"folders": out, "builtin": ["arthistory", "lfw"]}

    @app.post("/api/train", tags=["train"])
    def train(req: TrainRequest) -> dict:
        """Queue `zoo train` (or `--resume`) into runs/RUN; with `name`, exported into the zoo at the end."""
        from zoo.registry import get_card

        run = safe_name(req.run, "run")
        out = area("runs") / run
        spec = {k: v for k, v in req.model_dump().items() if v is not None and k != "run"}
        if req.resume:
            if not (out / "ckpt.pt").is_file():
                raise UserError(f"run {run}: has no checkpoint to resume")
            spec = {k: v for k, v in spec.items() if k in ("eval_every", "ckpt_every", "log_every", "workers",
                                                           "preview", "name", "resume")}
        else:
            if not req.dataset:
                raise UserError("give a dataset (a class-folder path, arthistory or lfw)")
            if req.dataset not in ("arthistory", "lfw"):
                spec["dataset"] = str(folders.check(req.dataset))
                if not Path(spec["dataset"]).is_dir():
                    raise UserError(f"{req.dataset}: not a folder")
            if req.model:
                get_card(req.model)
            if (out / "ckpt.pt").exists():
                raise UserError(f"run {run}: already has a checkpoint; resume it or choose another name")
        if req.name:
            from zoo.register import check_new_name

            check_new_name(req.name)
        spec["out"] = str(out)
        return store().submit("train", spec, f"train {run}" + (" (resume)" if req.resume else "")).public()

    @app.post("/api/runs/{run}/export", tags=["train"])
    def export(run: str, req: ExportRequest) -> dict:
        """`zoo export RUN --name NAME` as a job."""
        from zoo.register import check_new_name

        d = area("runs") / safe_name(run)
        if not (d / "ckpt.pt").is_file():
            raise UserError(f"run {run}: has no checkpoint to export")
        check_new_name(req.name)
        return store().submit("export", {"run": str(d), "name": req.name}, f"export {run} as {req.name}").public()

    @app.get("/api/runs", tags=["train"])
    def runs() -> list[dict]:
        """The studio's training runs: iterations logged, last metrics, checkpoint previews."""
        from zoo.studio.jobs import _read_log

        out = []
        for d in sorted(area("runs").iterdir()):
            if d.is_dir():
                rows = _read_log(d / "log.csv")
                previews = sorted(f"runs/{d.name}/previews/{p.name}" for p in (d / "previews").glob("*.png"))
                out.append({"run": d.name, "rows": rows, "checkpoint": (d / "ckpt.pt").is_file(),
                            "previews": previews})
        return out

    # --- jobs ----------------------------------------------------------------------------------

    @app.get("/api/jobs", tags=["jobs"])
    def jobs() -> list[dict]:
        """Every job, newest first (queued, running and finished)."""
        return [j.public() for j in store().list()]

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def job(job_id: str) -> dict:
        return _job(job_id).public(events=True)

    @app.post("/api/jobs/{job_id}/stop", tags=["jobs"])
    def stop(job_id: str) -> dict:
        """Stop a running job (a dream keeps the image so far, training its last checkpoint) or cancel a
        queued one."""
        _job(job_id)
        return store().stop(job_id).public()

    @app.get("/api/jobs/{job_id}/preview", tags=["jobs"])
    def preview(job_id: str):
        """The latest preview of a job as a JPEG."""
        import base64

        j = _job(job_id)
        if not j.preview:
            raise HTTPException(404, f"job {job_id} has no preview yet")
        return Response(base64.b64decode(j.preview.split(",", 1)[1]), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"])
    async def events(job_id: str, request: Request, after: int = 0):
        """Server-sent events of a job: its history after `after` (or Last-Event-ID), then live events;
        `preview` events carry the latest preview as a data: URL."""
        j = _job(job_id)
        last = request.headers.get("last-event-id")
        seq = int(last) if last and last.isdigit() else after

        async def stream():
            nonlocal seq
            sent_preview, quiet = 0, 0.0
            while True:
                new = [e for e in list(j.events) if e["seq"] > seq]
                for e in new:
                    seq = e["seq"]
                    yield f"id: {seq}\ndata: {json.dumps(e)}\n\n"
                if j.previews > sent_preview and j.preview:
                    sent_preview = j.previews
                    data = {"n": j.previews, "url": j.preview, "progress": j.progress}
                    yield f"event: preview\ndata: {json.dumps(data)}\n\n"
                if j.state in FINISHED and not new:
                    yield f"event: end\ndata: {json.dumps(j.public())}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.05)
                quiet += 0.05
                if quiet > 10:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def picture(ref: str) -> Path:
        """A studio file (uploads/…, outputs/…) or an absolute path inside a folder named with --folder."""
        if Path(ref).is_absolute():
            path = folders.check(ref)
            if not path.is_file():
                raise UserError(f"{ref}: no such file")
            return path
        return studio_file(ref, ("uploads", "outputs"))

    def _job(job_id: str):
        j = store().get(job_id)
        if j is None:
            raise HTTPException(404, f"no job {job_id}")
        return j

    return app


# --- helpers (server side, no torch) --------------------------------------------------------------


class _TooLarge(Exception):
    pass


def _validate(kind: str, path: Path, name: str) -> dict:
    """Read an upload with the CLI's reader for its kind; a UserError names what is wrong."""
    if kind in ("image", "png"):
        from zoo.dream.starts import check_image_file

        h, w = check_image_file(path)  # header and structure only: the worker decodes (issue 21)
        info = {"width": int(w), "height": int(h)}
        if kind == "png":
            from zoo.dream.recipe import read_recipe

            read_recipe(path)
        return info
    if kind == "prototxt":
        from zoo import convert

        g = convert.load_net(path)
        return {"layers": len(g.layers), "net": g.name}
    if kind == "mean":
        from zoo import convert

        m = convert.read_mean(path)
        return {"shape": list(m.shape)}
    if kind == "labels":
        return {"classes": len(_read_labels(path))}
    return {}  # weights: read with their prototxt at import (the converter needs both)


def _read_labels(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UserError(f"{path}: labels are not UTF-8 text") from None


def _ref_or_none(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return ref_of(Path(path))
    except ValueError:
        return None


def _card_json(card) -> dict:
    from zoo import cache
    from zoo.registry import user_toml

    cached = cache.is_cached(card)
    h, w = card.input_size
    return {
        "name": card.name, "title": card.title, "task": card.task, "license": card.license, "origin": card.origin,
        "input": [h, w], "channel_order": card.channel_order, "scale": card.scale,
        "mean": list(card.mean) if card.mean is not None else "mean file", "num_classes": card.num_classes,
        "default_blob": card.default_blob, "builtin": bool(card.builtin), "cached": cached,
        "user": card.defined_in == str(user_toml()),
        "bytes": cache.cached_size(card) if cached else None,
        "download_bytes": sum(int(getattr(f, "size", 0) or 0) for f in card.files.values()) or None,
        "notes": card.notes, "atlas": (studio_dir() / "atlases" / safe_name(card.name) / "atlas.json").is_file(),
    }


def _graph_or_none(card):
    from zoo import cache, convert

    proto = cache.file_path(card, "prototxt")
    if not proto.is_file():
        return None
    return convert.load_net(proto)


def _graph_json(g, card, size: tuple[int, int]) -> dict:
    first = next(iter(g.inputs))
    try:
        shapes = g.shapes({first: (1, 3, *size)})
    except UserError as e:
        raise UserError(f"{card.name}: {size[1]}x{size[0]} does not fit ({e})") from None
    writer: dict[str, str] = {}
    layers, edges = [], []
    for name in g.inputs:
        layers.append({"name": name, "type": "Input", "bottoms": [], "tops": [name]})
        writer[name] = name
    for layer in g.layers:
        layers.append({"name": layer.name, "type": layer.type, "bottoms": list(layer.bottoms),
                       "tops": list(layer.tops)})
        for b in layer.bottoms:
            if b in writer:
                edges.append({"from": writer[b], "to": layer.name, "blob": b,
                              "shape": list(shapes.get(b, ())), "dreamable": len(shapes.get(b, ())) == 4})
        for t in layer.tops:
            writer[t] = layer.name
    return {"model": card.name, "size": [size[1], size[0]], "layers": layers, "edges": edges,
            "outputs": list(g.outputs), "shapes": {b: list(v) for b, v in shapes.items()}}


def _atlas_index(model: str) -> dict | None:
    p = studio_dir() / "atlases" / safe_name(model) / "atlas.json"
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


THUMB_MAX_PIXELS = 8192 * 8192  # 512 MiB at most decoded in the web server for a thumbnail


def _thumbnail(path: Path, side: int) -> bytes:
    import io

    from PIL import Image

    cache = area("tmp") / "thumbs"
    cache.mkdir(exist_ok=True)
    st = path.stat()
    key = hashlib.sha256(f"{path}:{st.st_mtime_ns}:{st.st_size}:{side}".encode()).hexdigest()[:24]
    hit = cache / f"{key}.jpg"
    if hit.is_file():
        return hit.read_bytes()
    from zoo.memory import check_image

    check_image(path, max_pixels=THUMB_MAX_PIXELS)  # decoded in the web server: capped
    try:
        with Image.open(path) as im:
            im.draft("RGB", (side, side))
            im = im.convert("RGB")
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=85)
    except (OSError, ValueError) as e:
        raise UserError(f"{path.name}: cannot decode as an image ({type(e).__name__})") from None
    from zoo.io import write_bytes_atomic

    write_bytes_atomic(hit, buf.getvalue())
    return buf.getvalue()


def _converted(path: Path, fmt: str) -> Response:
    """A picture in another format for download, written by `zoo dream`'s own writer: the JPEG (EXIF) and
    the 16-bit TIFF (ImageDescription) carry the same recipe as the PNG, so `zoo dream --recipe` reads them."""
    import numpy as np
    from PIL import Image

    from zoo.dream import output
    from zoo.dream.recipe import read_recipe

    if fmt == "png":
        return FileResponse(path, media_type="image/png", filename=path.name)
    try:
        recipe = read_recipe(path)
    except UserError:
        recipe = None  # a picture without a recipe converts all the same
    from zoo.memory import check_image

    check_image(path, per_pixel=16)  # the picture, its RGB copy and the 16-bit TIFF
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    ext = {"jpeg": "jpg", "tiff": "tif"}[fmt]
    tmp = area("tmp") / f"{uuid.uuid4().hex}.{ext}"
    try:
        output.write_image(tmp, rgb, recipe, quality=95)
        data = tmp.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    stem = re.sub(r"\.[^.]*$", "", path.name)
    return Response(data, media_type=f"image/{fmt}",
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{ext}"'})
