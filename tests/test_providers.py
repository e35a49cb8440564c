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


def _never() -> bool:
    raise AssertionError("probed although the answer did not depend on it")


def test_choice_follows_what_the_machine_has() -> None:
    """Each input changes the answer: the decision is not CPU-by-default whatever happens."""
    both = [providers.CUDA, providers.CPU]
    assert providers.choose_providers(both, "", lambda: 1, lambda: True) == (providers.CUDA, providers.CPU)
    assert providers.choose_providers(both, "", lambda: 0, _never) == (providers.CPU,)  # no device
    assert providers.choose_providers(both, "", lambda: 2, lambda: False) == (providers.CPU,)  # cuDNN missing
    assert providers.choose_providers([providers.CPU], "", _never, _never) == (providers.CPU,)  # CPU-only wheel
    assert providers.choose_providers(both, "cpu", _never, _never) == (providers.CPU,)  # forced, GPU or not
    assert providers.choose_providers(both, "cuda", _never, _never) == (providers.CUDA, providers.CPU)
    assert providers.choose_providers([providers.CPU], "cuda", _never, _never) == (providers.CPU,)


def test_this_machine_reports_its_real_devices() -> None:
    """The driver probe agrees with the device nodes the kernel shows, and the session uses the choice."""
    has_nodes = any(Path("/dev").glob("nvidia[0-9]*"))
    assert (providers.cuda_device_count() > 0) == has_nodes
    assert (providers.CUDA in providers.select_providers()) == (
        has_nodes and providers.CUDA in __import__("onnxruntime").get_available_providers()
        and providers.cuda_provider_loads())


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


def test_environment_is_read_by_select_providers(monkeypatch, tmp_path: Path) -> None:
    """ZOO_PROVIDERS reaches the choice, and a session made with the guessed (or CPU) choice runs on exactly
    those providers (a forced cuda is the user's word: ORT falls back itself where there is no GPU)."""
    import onnxruntime as ort

    for forced in ("cpu", "cuda", ""):
        monkeypatch.setenv("ZOO_PROVIDERS", forced)
        providers.select_providers.cache_clear()
        try:
            want = providers.choose_providers(ort.get_available_providers(), forced, providers.cuda_device_count,
                                              providers.cuda_provider_loads)
            assert providers.select_providers() == want
            if forced == "cpu":
                assert want == (providers.CPU,)
            if forced != "cuda":
                s = providers.make_session(_tiny_onnx(tmp_path / f"t{forced or 'guess'}.onnx"))
                assert tuple(s.get_providers()) == want
        finally:
            providers.select_providers.cache_clear()
