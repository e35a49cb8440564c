"""The studio's worker under a real uvicorn on 127.0.0.1: kill -9 the worker mid-job and the studio
notices within seconds, fails that job with one line, starts a new worker and keeps the queue;
`/api/health` says what is true; queued jobs survive a studio restart."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest

pytest.importorskip("fastapi")
from studio_helpers import free_port, serve  # noqa: E402

from zoo.studio.app import Settings  # noqa: E402

LONG = {"init": "noise", "model": "efficientnet_lite0", "size": "48x48", "octaves": 1, "iterations": 10000}


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def until(what, timeout: float, step: float = 0.05):
    deadline = time.time() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.time() < deadline, "timed out"
        time.sleep(step)


def state(c: httpx.Client, job_id: str) -> dict:
    return c.get(f"/api/jobs/{job_id}").json()


def test_a_killed_worker_fails_its_job_and_a_new_one_runs_the_queue(home):
    with serve(Settings(port=free_port(), warm=False)) as (url, app), httpx.Client(base_url=url, timeout=30) as c:
        first = c.post("/api/dream", json=LONG).json()
        second = c.post("/api/dream", json=LONG).json()
        until(lambda: state(c, first["id"])["progress"].get("done", 0) >= 1, 180)
        assert state(c, second["id"])["state"] == "queued"
        health = c.get("/api/health").json()
        assert health["worker"] is True and health["running"] == first["id"]
        old_pid = app.state.store().process.pid
        os.kill(old_pid, signal.SIGKILL)
        killed = time.time()
        failed = until(lambda: (j := state(c, first["id"]))["state"] == "failed" and j, 10)
        noticed = time.time() - killed
        assert "\n" not in failed["error"] and "worker" in failed["error"] and "killed" in failed["error"]
        print(f"\nthe studio noticed the dead worker after {noticed:.2f} s")
        # a new worker takes the queued job; health names it and says it is alive
        until(lambda: state(c, second["id"])["state"] == "running", 120)
        health = c.get("/api/health").json()
        assert health["worker"] is True and health["pid"] != old_pid and health["running"] == second["id"]
        assert health["restarts"] == 1
        c.post(f"/api/jobs/{second['id']}/stop")
        assert until(lambda: (s := state(c, second["id"])["state"]) in ("stopped", "done") and s, 60)
        # Stop on the failed job answers with it as it is (failed), not "running"
        assert c.post(f"/api/jobs/{first['id']}/stop").json()["state"] == "failed"


def test_health_tells_a_dead_worker(home):
    with serve(Settings(port=free_port(), warm=False)) as (url, app), httpx.Client(base_url=url, timeout=30) as c:
        store = app.state.store()
        until(lambda: c.get("/api/health").json()["warm"], 120)
        store.restart_limit = 0  # no new worker: health must then say there is none
        os.kill(store.process.pid, signal.SIGKILL)
        health = until(lambda: (h := c.get("/api/health").json())["worker"] is False and h, 10)
        assert health["warm"] is False and health["ok"] is False


def test_queued_jobs_survive_a_studio_restart(home):
    from zoo.studio.worker import JobStore

    store = JobStore(start_worker=False, warm=False)
    one = {**LONG, "iterations": 1}
    a = store.submit("dream", {**one, "output": str(home / "a.png")}, "a")
    b = store.submit("dream", {**one, "output": str(home / "b.png")}, "b")
    store.stop(b.id)  # cancelled stays cancelled
    c = store.submit("dream", {**one, "output": str(home / "c.png")}, "c")
    bug = store.submit("fetch", {}, "a spec the server never sends: the job hits a bug")
    again = JobStore(start_worker=False, warm=False)  # the studio restarted: the same $ZOO_HOME
    assert [again.get(j.id).state for j in (a, b, c)] == ["queued", "cancelled", "queued"]
    assert [j.id for j in again.queued()] == [a.id, c.id, bug.id]
    again.start()
    try:
        for j in (a, c, bug):
            until(lambda j=j: again.get(j.id).state in ("done", "failed"), 180, 0.1)
        assert [again.get(j.id).state for j in (a, c)] == ["done", "done"], again.get(a.id).error
        error = again.get(bug.id).error  # one line for people, not a raw exception name
        assert "KeyError" not in error and "internal error" in error and "log.txt" in error, error
    finally:
        again.close()
