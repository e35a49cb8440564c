"""All layer handlers; importing this package fills the registry."""

from zoo.convert.layers import (  # noqa: F401  (one module per op family)
    activation,
    conv,
    dense,
    detection,
    lrn,
    norm,
    pool,
    resize,
    structure,
    tensor,
)
from zoo.convert.layers.base import REGISTRY, Op, handler

# Layer types that declare the net's inputs; the graph turns them into inputs, not layers.
INPUT_TYPES = {"Input", "DummyData"}
# Train-time data sources: in a train_val net they become an input (data) and a dead label.
DATA_TYPES = {"Data", "ImageData", "HDF5Data", "MemoryData", "WindowData", "Python", "AnnotatedData",
              "VideoData"}
# Layers that only make sense with labels; stripped with every branch that only feeds them.
LOSS_TYPES = {"SoftmaxWithLoss", "EuclideanLoss", "HingeLoss", "SigmoidCrossEntropyLoss", "InfogainLoss",
              "MultinomialLogisticLoss", "ContrastiveLoss", "Accuracy", "HDF5Output"}
# Types zoo knows and deliberately does not convert, with what to do instead.
NOT_CONVERTED = {
    "Proposal": "Faster R-CNN's proposal layer, not converted: feed rois as a second input instead",
}
# Layers that consume blobs and produce nothing: their bottoms are not outputs, their branch stays.
SINK_TYPES = {"Silence"}

__all__ = ["REGISTRY", "Op", "handler", "INPUT_TYPES", "DATA_TYPES", "LOSS_TYPES", "SINK_TYPES",
           "NOT_CONVERTED"]
