"""Shared by the `zoo dream` CLI tests: a ZOO_HOME where the built-in brain is built once per test
module (fixtures `built_home`, module-scoped, and `home`, which points ZOO_HOME at it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.cli import main

MODEL = "efficientnet_lite0"


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("dream_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(home))
        assert main(["layers", MODEL]) == 0
    return home


@pytest.fixture
def home(built_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ZOO_HOME", str(built_home))
    return built_home
