"""ONNX Runtime execution providers from what this machine really has.

onnxruntime-gpu lists CUDAExecutionProvider whether or not a GPU is there; asking for it on a
CPU-only machine makes ORT print errors and fall back. So CUDA is asked for only when the driver
answers with at least one device and the CUDA provider library can load its own dependencies.
`ZOO_PROVIDERS=cpu` (or `cuda`) overrides the guess.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def cuda_device_count() -> int:
    """Devices the CUDA driver reports (0 when there is no driver or it fails to start)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    try:
        if lib.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except AttributeError:
        return 0


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """Send fds 1 and 2 to /dev/null: native libraries print their load failures there."""
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(null, fd)
        yield
    finally:
        for fd, old in zip((1, 2), saved):
            os.dup2(old, fd)
            os.close(old)
        os.close(null)


def cuda_provider_loads() -> bool:
    """True if ORT's CUDA provider library and its dependencies (cuBLAS, cuDNN, ...) can be loaded."""
    import onnxruntime as ort

    capi = Path(ort.__file__).parent / "capi"
    shared, cuda = capi / "libonnxruntime_providers_shared.so", capi / "libonnxruntime_providers_cuda.so"
    if not cuda.is_file():
        return False
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:  # wheels that can use the nvidia-* pip packages' libraries
        with _silenced(), contextlib.suppress(Exception):  # nothing to preload is fine
            preload(directory="")
    try:
        if shared.is_file():
            ctypes.CDLL(str(shared), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(cuda))
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def select_providers() -> tuple[str, ...]:
    """Providers for an InferenceSession, best first; always ends with the CPU provider."""
    import onnxruntime as ort

    forced = os.environ.get("ZOO_PROVIDERS", "").strip().lower()
    return choose_providers(ort.get_available_providers(), forced, cuda_device_count, cuda_provider_loads)


def choose_providers(available: list[str], forced: str, device_count: Callable[[], int],
                     provider_loads: Callable[[], bool]) -> tuple[str, ...]:
    """The decision alone: the probes are asked only when the answer depends on them."""
    if forced == "cpu":
        return (CPU,)
    want_cuda = forced == "cuda" or (CUDA in available and device_count() > 0 and provider_loads())
    if want_cuda and CUDA in available:
        return (CUDA, CPU)
    return (CPU,)


def session_options():
    """Quiet sessions: warnings are ORT's business, errors still raise."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return opts


def make_session(onnx_path: str | Path, providers: tuple[str, ...] | None = None):
    """An InferenceSession on the best providers this machine has."""
    import onnxruntime as ort

    return ort.InferenceSession(str(onnx_path), sess_options=session_options(),
                                providers=list(providers or select_providers()))
