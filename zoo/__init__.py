"""zoo: a Caffe-compatible model zoo for DeepDream artists.

`zoo.load(name)` gives the PyTorch module with its preprocessing, `zoo.session(name)` an ONNX
Runtime session. Both are imported on first use, so `import zoo` stays light.
"""

from __future__ import annotations

__version__ = "0.1.0"


def load(name: str, **kwargs):
    from zoo.api import load as _load

    return _load(name, **kwargs)


def session(name: str, **kwargs):
    from zoo.api import session as _session

    return _session(name, **kwargs)
