"""zoo: a Caffe-compatible model zoo for DeepDream artists."""

__version__ = "0.1.0"
