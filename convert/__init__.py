"""Caffe reader, graph and emitters (ONNX, PyTorch, Caffe)."""
