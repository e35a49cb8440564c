"""Shared helpers for the zoo tests: where ../shared lives and the one test HTTP server (tests/fault_server.py)."""

from __future__ import annotations

from tests.conftest import MODELS as SHARED_MODELS
from tests.conftest import SHARED, shared_or_skip
from tests.fault_server import FaultServer

__all__ = ["SHARED", "SHARED_MODELS", "FaultServer", "shared_or_skip"]
