"""Caffe reader, graph and emitters (ONNX, PyTorch, Caffe).

Importing this package does not import torch: the path to ONNX stays light.
"""

from zoo.convert.api import load_net, random_weights, require_weights
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph, Layer
from zoo.convert.weights import read_mean

from zoo.errors import UserError


def write_onnx(graph, path, **kwargs):
    from zoo.convert.emit_onnx import write_onnx as _write

    return _write(graph, path, **kwargs)


def write_caffe(graph, prototxt_path, caffemodel_path):
    from zoo.convert.emit_caffe import write_caffe as _write

    return _write(graph, prototxt_path, caffemodel_path)


__all__ = ["load_net", "random_weights", "require_weights", "write_onnx", "write_caffe", "read_mean",
           "Graph", "Layer", "ConvertError", "UserError"]
