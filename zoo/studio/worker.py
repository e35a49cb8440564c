"""The job queue: one worker process runs jobs one at a time; the web server keeps their state.

The worker is a separate (spawned) process, so torch, a dream or a training run never hold the web
server's interpreter: the API answers while a job runs. Jobs and their events live in the server
(`JobStore`), are saved to $ZOO_HOME/studio/jobs.json, and so survive a page reload; the latest
preview of each job is kept apart so that replaying events stays cheap.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from zoo.io import write_text_atomic
from zoo.studio.paths import studio_dir

FINISHED = ("done", "failed", "stopped", "cancelled")


# --- the worker process ---------------------------------------------------------------------------


def _worker_main(home: str, jobs_q, events_q, stop_id, warm_model: str | None = None) -> None:
    """Loop of the worker process: warm up, then take a job, run it, report events and the outcome."""
    os.environ["ZOO_HOME"] = home
    from zoo.errors import UserError
    from zoo.studio import jobs

    jobs.warm(warm_model)
    events_q.put((None, {"type": "ready"}))
    current: dict = {"id": None, "stop": threading.Event()}

    def watch_stop() -> None:  # the server writes stopped ids into shared memory; this sets the job's flag
        while True:
            time.sleep(0.05)
            if current["id"] is not None and current["id"] in stop_id.value.decode().split():
                current["stop"].set()

    threading.Thread(target=watch_stop, name="zoo-studio-stop", daemon=True).start()
    while True:
        item = jobs_q.get()
        if item is None:
            return
        job_id, kind, spec = item
        emit = lambda event, job_id=job_id: events_q.put((job_id, event))  # noqa: E731
        if job_id in stop_id.value.decode().split():  # cancelled while it waited in the queue
            emit({"type": "state", "state": "cancelled"})
            continue
        job_dir = Path(home) / "studio" / "jobs" / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        stop = threading.Event()
        current.update(id=job_id, stop=stop)
        ctx = jobs.Context(stop=stop, job_dir=job_dir)
        emit({"type": "state", "state": "running"})
        with open(job_dir / "log.txt", "w", encoding="utf-8") as log, contextlib.redirect_stderr(log), \
                contextlib.redirect_stdout(log):
            try:
                result = jobs.KINDS[kind](spec, emit, ctx)
                state = "stopped" if result.get("stopped") else "done"
                emit({"type": "state", "state": state, "result": result})
            except UserError as e:
                emit({"type": "state", "state": "failed", "error": str(e)})
            except KeyboardInterrupt:
                emit({"type": "state", "state": "stopped", "result": {}})
            except Exception as e:  # noqa: BLE001 - a bug in one job must not end the worker
                traceback.print_exc(file=log)
                emit({"type": "state", "state": "failed", "error": _one_line(e, kind, job_dir / "log.txt")})
            finally:
                current["id"] = None


def _one_line(e: BaseException, kind: str, log: Path) -> str:
    """What a job's unexpected failure says to people: the disk or memory problem in words, else that it
    is a bug and where its traceback is (never a bare exception name)."""
    if isinstance(e, MemoryError):
        return f"not enough memory for this {kind} job"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename or kind}: {e.strerror}" if e.filename else f"the {kind} job: {e.strerror}"
    return f"the {kind} job failed on an internal error (a bug in zoo); its traceback is in {log}"


# --- the server side ------------------------------------------------------------------------------


@dataclass
class Job:
    id: str
    kind: str
    spec: dict
    title: str = ""
    state: str = "queued"
    created: float = field(default_factory=time.time)
    finished: float | None = None
    progress: dict = field(default_factory=dict)
    result: dict | None = None
    error: str | None = None
    events: list[dict] = field(default_factory=list)
    preview: str | None = None  # the latest preview (a data: URL)
    previews: int = 0  # how many previews came
    seq: int = 0  # the last event number given (events are numbered for Last-Event-ID; never reused)

    def public(self, events: bool = False) -> dict:
        d = {k: getattr(self, k) for k in ("id", "kind", "title", "state", "created", "finished", "progress",
                                           "result", "error", "previews")}
        d["spec"] = {k: v for k, v in self.spec.items() if k != "output"}
        if events:
            d["events"] = self.events
        return d


class JobStore:
    """Jobs by id, fed by the worker's events; one worker, one job at a time, in submission order.

    The queue lives here, not in the worker: a job is handed to the worker only when it is idle, so a
    worker that dies (killed, out of memory, a crash in a decoder) loses at most the job it ran. A
    supervisor thread per worker reads its events and notices its death within a fraction of a second:
    that job fails with one line, a new worker starts and takes the rest of the queue. The queue is saved
    atomically to $ZOO_HOME/studio/jobs.json at every change, so queued jobs survive a restart."""

    restart_limit = 20  # workers started in a row without finishing a job, before the studio gives up

    def __init__(self, start_worker: bool = True, warm: bool = True):
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}
        self.changed = threading.Condition(self.lock)
        self._ctx = mp.get_context("spawn")
        self._stop_id = self._ctx.Array("c", 1024)  # ids of the jobs the user stopped, space-separated
        self._jobs_q = self._events_q = None
        self.process = None
        self.ready = False  # the worker has warmed up (torch imported, the last brain loaded)
        self.running: str | None = None  # the job the worker holds
        self.restarts, self._failures, self._closing = 0, 0, False
        self._load()
        self.warm_model = self._last_brain() if warm else None
        if start_worker:
            self.start()

    # persistence
    def _path(self) -> Path:
        return studio_dir() / "jobs.json"

    def _load(self) -> None:
        with contextlib.suppress(OSError, ValueError, TypeError):
            for d in json.loads(self._path().read_text(encoding="utf-8")):
                job = Job(**d)
                if job.state not in (*FINISHED, "queued"):  # the worker that ran it is gone; queued ones wait
                    job.state, job.error = "failed", "the studio was restarted while this job ran"
                    job.finished = job.finished or time.time()
                self.jobs[job.id] = job

    def _last_brain(self) -> str:
        """The brain the worker loads before its first job: the last one dreamt with, else the built-in."""
        for job in sorted(self.jobs.values(), key=lambda j: j.created, reverse=True):
            if job.kind in ("dream", "atlas", "channels", "sound", "strokes", "journey") and job.spec.get("model"):
                return str(job.spec["model"])
        return "efficientnet_lite0"

    def _save(self) -> None:
        keep = sorted(self.jobs.values(), key=lambda j: j.created)
        keep = [j for j in keep[:-200] if j.state == "queued"] + keep[-200:]  # never drop a queued job
        fields = ("id", "kind", "spec", "title", "state", "created", "finished", "progress", "result", "error",
                  "previews", "seq")
        data = [{**{k: getattr(j, k) for k in fields}, "events": j.events[-50:]} for j in keep]
        with contextlib.suppress(OSError):  # a full or read-only disk must not stop the studio
            studio_dir().mkdir(parents=True, exist_ok=True)
            write_text_atomic(self._path(), json.dumps(data))

    # worker
    def start(self) -> None:
        """Start a worker with its own queues (a killed one may leave its queues half-written) and the
        thread that supervises it."""
        from zoo.registry import zoo_home

        self._jobs_q, self._events_q = self._ctx.Queue(), self._ctx.Queue()
        self.ready, self.running = False, None
        self.process = self._ctx.Process(target=_worker_main, name="zoo-studio-worker", daemon=True,
                                         args=(str(zoo_home()), self._jobs_q, self._events_q, self._stop_id,
                                               self.warm_model))
        with _quiet_sigint():
            self.process.start()
        threading.Thread(target=self._supervise, args=(self.process, self._events_q), name="zoo-studio-events",
                         daemon=True).start()

    def close(self) -> None:
        self._closing = True
        if self.process is not None and self.process.is_alive():
            self._jobs_q.put(None)
            self.process.join(timeout=2)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout=5)
        if self._events_q is not None:
            self._events_q.put(None)

    def health(self) -> dict:
        """What /api/health says about the worker: alive or not, warmed up, its pid, the job it runs."""
        alive = self.process is not None and self.process.is_alive()
        return {"worker": alive, "warm": alive and self.ready, "pid": self.process.pid if alive else None,
                "running": self.running, "queued": len(self.queued()), "restarts": self.restarts}

    def queued(self) -> list[Job]:
        return sorted((j for j in self.jobs.values() if j.state == "queued"), key=lambda j: j.created)

    def _supervise(self, process, events_q) -> None:
        """Read one worker's events until it exits; if it died, fail its job and start another."""
        while True:
            try:
                item = events_q.get(timeout=0.2)
            except queue.Empty:
                if process.is_alive():
                    continue
                break
            if item is None:
                return
            self._on_event(*item)
        if self._closing or process is not self.process:
            return
        self._worker_died(process)

    def _on_event(self, job_id: str | None, event: dict) -> None:
        with self.changed:
            if job_id is None:  # the worker's own news: warmed up
                self.ready = True
            else:
                job = self.jobs.get(job_id)
                if job is not None:
                    self._apply(job, event)
                if event.get("type") == "state" and event.get("state") in FINISHED and job_id == self.running:
                    self.running, self._failures = None, 0
            self._dispatch()
            self.changed.notify_all()

    def _worker_died(self, process) -> None:
        code = process.exitcode
        how = f"was killed by signal {-code} ({_signal_name(-code)})" if code and code < 0 else f"exited ({code})"
        with self.changed:
            job = self.jobs.get(self.running) if self.running else None
            if job is not None and job.state not in FINISHED:
                self._apply(job, {"type": "state", "state": "failed",
                                  "error": f"the studio's worker process {how} during this job; a new worker "
                                           "takes the next job"})
            self.running, self.ready = None, False
            self._failures += 1
            again = self._failures <= self.restart_limit
            if again:
                self.restarts += 1
            self.changed.notify_all()
        if again:
            self.start()

    def _dispatch(self) -> None:
        """Hand the next queued job to the worker when it is idle (called with the lock held)."""
        if self.running is not None or not self.ready or self.process is None or not self.process.is_alive():
            return
        for job in self.queued():
            self.running = job.id
            self._jobs_q.put((job.id, job.kind, job.spec))
            return

    def _apply(self, job: Job, event: dict) -> None:
        event = dict(event)
        preview = event.pop("preview", None)
        if preview is not None:
            job.preview, job.previews = preview, job.previews + 1
            event["preview"] = job.previews
        kind = event.get("type")
        if kind == "state":
            if job.state == "cancelled":
                return
            job.state = event["state"]
            job.result = event.get("result", job.result)
            job.error = event.get("error")
            if job.state in FINISHED:
                job.finished = time.time()
            self._save()
        elif kind in ("progress", "start"):
            job.progress = {k: v for k, v in event.items() if k != "type"}
        elif kind == "metrics":  # training: iterations done of the total
            job.progress = {k: event[k] for k in ("done", "total", "percent") if k in event}
        if kind == "metrics":  # the whole table each time: keep only the latest in the history
            job.events = [e for e in job.events if e.get("type") != "metrics"]
        job.seq = max(job.seq, job.events[-1]["seq"] if job.events else 0) + 1
        event["seq"] = job.seq
        if kind == "progress" and job.events and job.events[-1].get("type") == "progress":
            job.events[-1] = event  # the history keeps the latest progress, not every step
        else:
            job.events.append(event)

    # API
    def submit(self, kind: str, spec: dict, title: str = "") -> Job:
        job = Job(uuid.uuid4().hex[:12], kind, spec, title)
        with self.changed:
            self.jobs[job.id] = job
            self._save()
            self._dispatch()
        return job

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)

    def stop(self, job_id: str) -> Job | None:
        """Stop a running job (its result so far is kept) or cancel a queued one."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        with self.changed:
            if job.state == "queued":
                job.state, job.finished = "cancelled", time.time()
                self._save()
            ids = [i for i in self._stop_id.value.decode().split() if i != job_id][-60:]
            self._stop_id.value = " ".join([*ids, job_id]).encode()
        return job


def _signal_name(num: int) -> str:
    with contextlib.suppress(ValueError):
        return {signal.SIGKILL: "killed, perhaps out of memory"}.get(num, signal.Signals(num).name)
    return "unknown"


@contextlib.contextmanager
def _quiet_sigint():
    """The worker starts with SIGINT ignored: Ctrl-C in the terminal is for the server, which then
    stops the worker (Stop in the page sets the job's stop flag, no signal)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)

