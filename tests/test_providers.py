"""Execution providers: CPU here, and not a word on stderr when there is no GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from zoo import providers


def _tiny_onnx(path: Path) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    return path


def test_cpu_only_machine_selects_cpu() -> None:
    if providers.cuda_device_count() > 0:  # pragma: no cover - a GPU machine
        assert providers.select_providers()[0] == providers.CUDA
        return
    assert providers.select_providers() == (providers.CPU,)


def test_session_runs(tmp_path: Path) -> None:
    s = providers.make_session(_tiny_onnx(tmp_path / "t.onnx"))
    y = s.run(None, {"x": np.array([[-1.0, 0.0, 2.0]], np.float32)})[0]
    np.testing.assert_array_equal(y, [[0, 0, 2]])


def test_creating_a_session_prints_nothing(tmp_path: Path) -> None:
    """fd 2 of a fresh process stays empty: no CUDA load errors, no ORT warnings."""
    model = _tiny_onnx(tmp_path / "t.onnx")
    code = ("from zoo.providers import make_session, select_providers; import numpy as np;"
            f"s = make_session({str(model)!r}); s.run(None, {{'x': np.zeros((1, 3), np.float32)}});"
            "print(select_providers())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "CPUExecutionProvider" in r.stdout


def test_environment_can_force_cpu(monkeypatch) -> None:
    monkeypatch.setenv("ZOO_PROVIDERS", "cpu")
    providers.select_providers.cache_clear()
    try:
        assert providers.select_providers() == (providers.CPU,)
    finally:
        providers.select_providers.cache_clear()
