"""Jobs: the queue of the worker process, each job's state, its preview, and its events as SSE."""

from __future__ import annotations

import asyncio
import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response, StreamingResponse

from zoo.errors import UserError
from zoo.studio.state import StudioDep
from zoo.studio.worker import FINISHED

router = APIRouter(tags=["jobs"])
POLL_S = 0.05  # how often a stream looks for new events
KEEP_ALIVE_S = 10.0


@router.get("/api/jobs")
def jobs(studio: StudioDep) -> list[dict]:
    """Every job, newest first (queued, running and finished)."""
    return [j.public() for j in studio.store.list()]


@router.get("/api/jobs/{job_id}")
def job(job_id: str, studio: StudioDep) -> dict:
    return studio.job(job_id).public(events=True)


@router.post("/api/jobs/{job_id}/stop")
def stop(job_id: str, studio: StudioDep) -> dict:
    """Stop a running job (a dream keeps the image so far, training its last checkpoint) or cancel a
    queued one."""
    studio.job(job_id)
    return studio.store.stop(job_id).public()


RESUMABLE = ("journey",)  # kinds whose finished parts are kept on disk and skipped by the same spec


@router.post("/api/jobs/{job_id}/resume")
def resume(job_id: str, studio: StudioDep) -> dict:
    """Queue a stopped (or failed) journey again with its own spec and output: the frames it finished
    are skipped, as `zoo dream` does when the same command is run again."""
    j = studio.job(job_id)
    if j.kind not in RESUMABLE or j.state not in ("stopped", "failed"):
        raise UserError(f"job {job_id}: only a stopped or failed journey resumes (this is a {j.state} {j.kind})")
    title = j.title if j.title.endswith("(resumed)") else f"{j.title} (resumed)"
    return studio.store.submit(j.kind, dict(j.spec), title).public()


@router.get("/api/jobs/{job_id}/preview")
def preview(job_id: str, studio: StudioDep):
    """The latest preview of a job as a JPEG."""
    import base64

    j = studio.job(job_id)
    if not j.preview:
        raise HTTPException(404, f"job {job_id} has no preview yet")
    return Response(base64.b64decode(j.preview.split(",", 1)[1]), media_type="image/jpeg",
                    headers={"Cache-Control": "no-store"})


@router.get("/api/jobs/{job_id}/events")
async def events(job_id: str, request: Request, studio: StudioDep, after: int = 0):
    """Server-sent events of a job: its history after `after` (or Last-Event-ID), then live events;
    `preview` events carry the latest preview as a data: URL."""
    j = studio.job(job_id)
    last = request.headers.get("last-event-id")
    seq = int(last) if last and last.isdigit() else after
    return StreamingResponse(_stream(j, request, seq), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(j, request: Request, seq: int):
    """The SSE lines of one job: events after `seq`, previews as they change, an `end` when it is done."""
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
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
        if quiet > KEEP_ALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
