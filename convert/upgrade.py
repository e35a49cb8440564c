"""Old nets upgraded to V2 `layer { type: "Convolution" }` on load, as Caffe's upgrade_proto does:
V1 `layers { type: CONVOLUTION }` (2014-2015) and V0 `layers { layer { type: "conv" kernelsize: 3 } }`
(2013, with separate `padding` layers folded into the conv or pool they feed)."""

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
    if is_v0(net):
        if net.layer:
            raise ConvertError(f"{source}: mixes V0 `layers` and V2 `layer` records")
        return upgrade_v0_net(net, source)
    if net.layer:
        raise ConvertError(f"{source}: mixes V1 `layers` and V2 `layer` records")
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    for v1 in net.layers:
        out.layer.append(upgrade_v1_layer(v1, source))
    return out


# -- V0: `layers { layer { name type: "conv" num_output kernelsize ... } bottom top }` (Caffe before 2014) --
V0_TYPES = {
    "accuracy": "Accuracy", "bnll": "BNLL", "concat": "Concat", "conv": "Convolution", "data": "Data",
    "dropout": "Dropout", "euclidean_loss": "EuclideanLoss", "flatten": "Flatten", "hdf5_data": "HDF5Data",
    "hdf5_output": "HDF5Output", "im2col": "Im2col", "images": "ImageData", "infogain_loss": "InfogainLoss",
    "innerproduct": "InnerProduct", "lrn": "LRN", "multinomial_logistic_loss": "MultinomialLogisticLoss",
    "pool": "Pooling", "relu": "ReLU", "sigmoid": "Sigmoid", "softmax": "Softmax", "softmax_loss": "SoftmaxWithLoss",
    "split": "Split", "tanh": "TanH", "window_data": "WindowData",
}
_ANY = "*"
# V0 field -> {V0 type: "param_message.field"}: where Caffe's upgrade puts each flat V0 setting.
_V0_FIELDS = {
    "num_output": {"conv": "convolution_param.num_output", "innerproduct": "inner_product_param.num_output"},
    "biasterm": {"conv": "convolution_param.bias_term", "innerproduct": "inner_product_param.bias_term"},
    "weight_filler": {"conv": "convolution_param.weight_filler", "innerproduct": "inner_product_param.weight_filler"},
    "bias_filler": {"conv": "convolution_param.bias_filler", "innerproduct": "inner_product_param.bias_filler"},
    "pad": {"conv": "convolution_param.pad", "pool": "pooling_param.pad"},
    "kernelsize": {"conv": "convolution_param.kernel_size", "pool": "pooling_param.kernel_size"},
    "stride": {"conv": "convolution_param.stride", "pool": "pooling_param.stride"},
    "group": {"conv": "convolution_param.group"},
    "pool": {"pool": "pooling_param.pool"},  # MAX, AVE, STOCHASTIC: the same numbers in both enums
    "dropout_ratio": {"dropout": "dropout_param.dropout_ratio"},
    "local_size": {"lrn": "lrn_param.local_size"},
    "alpha": {"lrn": "lrn_param.alpha"},
    "beta": {"lrn": "lrn_param.beta"},
    "k": {"lrn": "lrn_param.k"},
    "concat_dim": {"concat": "concat_param.concat_dim"},
    "source": {"data": "data_param.source", "hdf5_data": "hdf5_data_param.source", "images": "image_data_param.source",
               "window_data": "window_data_param.source", "infogain_loss": "infogain_loss_param.source"},
    "batchsize": {"data": "data_param.batch_size", "hdf5_data": "hdf5_data_param.batch_size",
                  "images": "image_data_param.batch_size", "window_data": "window_data_param.batch_size"},
    "rand_skip": {"data": "data_param.rand_skip", "images": "image_data_param.rand_skip"},
    "shuffle_images": {"images": "image_data_param.shuffle"},
    "new_height": {"images": "image_data_param.new_height"},
    "new_width": {"images": "image_data_param.new_width"},
    "det_fg_threshold": {"window_data": "window_data_param.fg_threshold"},
    "det_bg_threshold": {"window_data": "window_data_param.bg_threshold"},
    "det_fg_fraction": {"window_data": "window_data_param.fg_fraction"},
    "det_context_pad": {"window_data": "window_data_param.context_pad"},
    "det_crop_mode": {"window_data": "window_data_param.crop_mode"},
    "hdf5_output_param": {"hdf5_output": "hdf5_output_param"},
    "scale": {_ANY: "transform_param.scale"},
    "meanfile": {_ANY: "transform_param.mean_file"},
    "cropsize": {_ANY: "transform_param.crop_size"},
    "mirror": {_ANY: "transform_param.mirror"},
}


def is_v0(net: caffe_pb2.NetParameter) -> bool:
    """A net written in V0: some `layers` record holds its settings in a nested `layer { }`."""
    return any(v1.HasField("layer") for v1 in net.layers)


def _put(p: caffe_pb2.LayerParameter, path: str, value) -> None:
    msg_name, _, field = path.partition(".")
    target = getattr(p, msg_name)
    if not field:
        target.CopyFrom(value)
        return
    current = getattr(target, field)
    if target.DESCRIPTOR.fields_by_name[field].message_type is not None:
        current.CopyFrom(value)
    elif hasattr(current, "append"):  # V2 convolutions take per-axis lists; V0 gave one value for both
        current.append(value)
    else:
        setattr(target, field, value)


def upgrade_v0_layer(v1: caffe_pb2.V1LayerParameter, source: str = "") -> caffe_pb2.LayerParameter:
    """One V0 record as a V2 layer; a setting its type does not take is dropped, as Caffe drops it."""
    v0 = v1.layer
    kind = v0.type
    if kind not in V0_TYPES:
        raise ConvertError(f"{source}: layer {v0.name!r} has the V0 type {kind!r}, which Caffe's upgrade does not know")
    p = caffe_pb2.LayerParameter(name=v0.name, type=V0_TYPES[kind])
    p.bottom.extend(v1.bottom)
    p.top.extend(v1.top)
    p.blobs.extend(v0.blobs)
    p.zoo_unknown.extend(v1.zoo_unknown)
    for i in range(max(len(v0.blobs_lr), len(v0.weight_decay))):
        spec = p.param.add()
        if i < len(v0.blobs_lr):
            spec.lr_mult = v0.blobs_lr[i]
        if i < len(v0.weight_decay):
            spec.decay_mult = v0.weight_decay[i]
    for field, value in v0.ListFields():
        where = _V0_FIELDS.get(field.name)
        if where is None:
            continue
        path = where.get(kind) or where.get(_ANY)
        if path is not None:
            _put(p, path, value)
    return p


def fold_padding_layers(net: caffe_pb2.NetParameter, source: str = "") -> list[caffe_pb2.V1LayerParameter]:
    """V0's `padding` layers become the `pad` of the conv or pool that reads them (UpgradeV0PaddingLayers)."""
    producer: dict[str, caffe_pb2.V1LayerParameter | None] = {name: None for name in net.input}
    kept: list[caffe_pb2.V1LayerParameter] = []
    for v1 in net.layers:
        rec = caffe_pb2.V1LayerParameter()
        rec.CopyFrom(v1)
        for j, blob in enumerate(v1.bottom):
            pad = producer.get(blob)
            if pad is None or pad.layer.type != "padding":
                continue
            if v1.layer.type not in ("conv", "pool") or len(v1.bottom) != 1:
                raise ConvertError(f"{source}: V0 padding layer {pad.layer.name!r} feeds {v1.layer.name!r} "
                                   f"({v1.layer.type}); Caffe folds padding only into one-input conv or pool layers")
            if len(pad.bottom) != 1 or len(pad.top) != 1:
                raise ConvertError(f"{source}: V0 padding layer {pad.layer.name!r} must have one bottom and one top")
            rec.layer.pad = pad.layer.pad
            rec.bottom[j] = pad.bottom[0]
        for blob in v1.top:
            producer[blob] = v1
        if v1.layer.type != "padding":
            kept.append(rec)
    return kept


def upgrade_v0_net(net: caffe_pb2.NetParameter, source: str = "") -> caffe_pb2.NetParameter:
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net)
    del out.layers[:]
    for v1 in fold_padding_layers(net, source):
        if not v1.HasField("layer"):
            raise ConvertError(f"{source}: mixes V0 `layers {{ layer {{ }} }}` records with V1 ones")
        out.layer.append(upgrade_v0_layer(v1, source))
    return out
