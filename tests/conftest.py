"""Shared fixtures: where ../shared lives (SHARED, the `shared` fixture, shared_or_skip) and each test's own ZOO_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODELS = SHARED / "models"
DATASETS = SHARED / "datasets"

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _isolated_zoo_home(tmp_path_factory, monkeypatch):
    """Every test gets its own ZOO_HOME so nothing leaks into the user's cache or between tests."""
    if "ZOO_HOME" not in os.environ or os.environ.get("ZOO_TEST_KEEP_HOME") != "1":
        monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo_home")))
    monkeypatch.delenv("ZOO_MIRROR", raising=False)


def shared_or_skip(path: Path) -> Path:
    """`path` (under SHARED), or skip the test that needs it when ../shared is not there."""
    if not path.exists():
        pytest.skip(f"{path} is not available (../shared missing)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared folder (real Caffe models and data sets); a test that takes it skips without it.
    Modules that need paths at import use the SHARED constant above, never a path of their own."""
    return shared_or_skip(SHARED)


def interruptible() -> None:
    """preexec_fn for a child that must take Ctrl-C: a shell's background job (`cmd &`) starts with
    SIGINT ignored, the child inherits that, and Python then installs no KeyboardInterrupt handler."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
