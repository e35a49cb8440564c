"""V1 `layers { type: CONVOLUTION }` nets upgraded to V2 `layer { type: "Convolution" }` on load."""

from __future__ import annotations

from zoo.convert.errors import ConvertError
from zoo.convert.proto import caffe_pb2

V1 = caffe_pb2.V1LayerParameter

V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL", "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution", "DATA": "Data",
    "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout", "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss", "ELTWISE": "Eltwise", "EXP": "Exp", "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output", "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData", "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN", "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence", "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice", "TANH": "TanH",
    "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}

# Parameter messages that V1 and V2 share by type (copied as they are).
_SHARED_PARAMS = [f.name for f in V1.DESCRIPTOR.fields
                  if f.name.endswith("_param") and f.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name]


def upgrade_v1_layer(v1, source: str = "") -> caffe_pb2.LayerParameter:
    enum_name = V1.LayerType.Name(v1.type)
    if enum_name == "NONE":
        raise ConvertError(f"{source}: layer {v1.name!r} has no type")
    p = caffe_pb2.LayerParameter(name=v1.name, type=V1_TYPES.get(enum_name, enum_name))
    p.bottom.extend(v1.bottom)
    p.top.extend(v1.top)
    p.include.extend(v1.include)
    p.exclude.extend(v1.exclude)
    p.loss_weight.extend(v1.loss_weight)
    p.blobs.extend(v1.blobs)
    p.zoo_unknown.extend(v1.zoo_unknown)
    n = max(len(v1.param), len(v1.blobs_lr), len(v1.weight_decay))
    for i in range(n):
        spec = p.param.add()
        if i < len(v1.param):
            spec.name = v1.param[i]
        if i < len(v1.blobs_lr):
            spec.lr_mult = v1.blobs_lr[i]
        if i < len(v1.weight_decay):
            spec.decay_mult = v1.weight_decay[i]
    for name in _SHARED_PARAMS:
        if v1.HasField(name):
            getattr(p, name).CopyFrom(getattr(v1, name))
    return p


def upgrade_net(net: caffe_pb2.NetParameter, source: str = "") -> caffe_pb2.NetParameter:
    """Return a net whose layers are all V2; V1 and V2 records in one file are an error, as in Caffe."""
    if not net.layers:
        return net
    if net.layer:
        raise ConvertError(f"{source}: mixes V1 `layers` and V2 `layer` records")
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    for v1 in net.layers:
        out.layer.append(upgrade_v1_layer(v1, source))
    return out
