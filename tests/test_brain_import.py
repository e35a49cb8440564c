"""A brain registered with `zoo convert --name` sees what its authors fed it: every preprocessing field
of a card settable, defaults from the prototxt, `zoo info` showing them, and a one-line check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import zoo.cli
from zoo.preprocess import Preprocess
from zoo.registry import get_card

try:  # tests/ is on sys.path when pytest imports test files from it
    from zoo_helpers import SHARED, SHARED_MODELS, shared_or_skip
except ImportError:  # pragma: no cover
    from tests.zoo_helpers import SHARED, SHARED_MODELS, shared_or_skip

MTCNN = SHARED_MODELS / "mtcnn"
FACE = SHARED / "datasets" / "lfw_identity" / "George_W_Bush" / "George_W_Bush_0001.jpg"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = zoo.cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def face48(tmp_path: Path) -> Path:
    """A real face as MTCNN's O-Net is given one: the middle of an LFW photo, scaled to 48x48."""
    image = Image.open(shared_or_skip(FACE)).convert("RGB")
    w, h = image.size
    path = tmp_path / "face48.png"
    image.crop((w // 2 - 60, h // 2 - 60, w // 2 + 60, h // 2 + 60)).resize((48, 48)).save(path)
    return path


def _top(capsys, model: str, picture: Path, *extra: str) -> dict:
    code, out, err = run(capsys, "classify", "-m", model, picture, "--json", "--top", "2", *extra)
    assert code == 0, err
    return json.loads(out)["results"][0]["top"][0]


def test_det3_registered_with_its_options_predicts_as_the_builtin_card(tmp_path, face48, capsys, monkeypatch):
    shared_or_skip(MTCNN / "det3.caffemodel")
    labels = tmp_path / "labels.txt"
    labels.write_text("not face\nface\n")
    code, out, err = run(capsys, "convert", MTCNN / "det3.prototxt", "-w", MTCNN / "det3.caffemodel",
                         "-o", tmp_path / "det3", "-f", "onnx", "--name", "myonet", "--mean-pixel", "127.5,127.5,127.5",
                         "--channel-order", "RGB", "--scale", "0.0078125", "--resize", "input", "--transpose",
                         "--labels", labels, "--test-picture", face48)
    assert code == 0, err
    assert "myonet on face48.png: face (" in out
    mirror = tmp_path / "mirror" / "mtcnn_det3"
    mirror.mkdir(parents=True)
    for name in ("det3.prototxt", "det3.caffemodel"):
        shutil.copy(MTCNN / name, mirror / name)
    monkeypatch.setenv("ZOO_MIRROR", str(mirror.parent))
    mine, builtin = _top(capsys, "myonet", face48), _top(capsys, "mtcnn_det3", face48)
    assert mine["label"] == builtin["label"] == "face"
    assert abs(mine["prob"] - builtin["prob"]) < 1e-4
    assert builtin["prob"] > 0.9


# --- one test per field, on det1 (12x12, 28 KB): the card's fields and what Preprocess does with them ----

def _register(tmp_path: Path, capsys, *options: object, proto: Path | None = None) -> tuple[str, str]:
    shared_or_skip(MTCNN / "det1.caffemodel")
    code, out, err = run(capsys, "convert", proto or MTCNN / "det1.prototxt", "-w", MTCNN / "det1.caffemodel",
                         "-o", tmp_path / "det1", "-f", "onnx", "--name", "mine", *options)
    assert code == 0, err
    return out, err


@pytest.fixture
def picture() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))


def _prepared(image: Image.Image) -> np.ndarray:
    card = get_card("mine")
    return Preprocess.from_card(card).prepare(image)


def _caffe_default(rgb: np.ndarray) -> np.ndarray:
    """Caffe's ImageNet convention, written out: BGR, minus 104/117/123, CxHxW."""
    return rgb[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) - np.array([104, 117, 123], np.float32)[:, None, None]


def _short_side_crop(image: Image.Image, short: int, h: int, w: int) -> np.ndarray:
    iw, ih = image.size
    f = short / min(iw, ih)
    big = image.resize((round(iw * f), round(ih * f)), Image.BILINEAR)
    left, top = (big.size[0] - w) // 2, (big.size[1] - h) // 2
    return np.asarray(big.crop((left, top, left + w, top + h)), dtype=np.float32)


def test_default_is_caffe_imagenet_short_side_256(tmp_path, capsys, picture):
    _register(tmp_path, capsys)
    card = get_card("mine")
    assert (card.resize, card.transpose, card.channel_order, card.input_size) == (256, False, "BGR", (12, 12))
    np.testing.assert_allclose(_prepared(picture), _caffe_default(_short_side_crop(picture, 256, 12, 12)), atol=1e-4)


def test_resize_input_scales_straight_to_the_input_size(tmp_path, capsys, picture):
    _register(tmp_path, capsys, "--resize", "input")
    assert get_card("mine").resize == 0
    want = np.asarray(picture.resize((12, 12), Image.BILINEAR), dtype=np.float32)
    np.testing.assert_allclose(_prepared(picture), _caffe_default(want), atol=1e-4)


def test_resize_short_side(tmp_path, capsys, picture):
    _register(tmp_path, capsys, "--resize", "40")
    assert get_card("mine").resize == 40
    np.testing.assert_allclose(_prepared(picture), _caffe_default(_short_side_crop(picture, 40, 12, 12)), atol=1e-4)


def test_transpose_swaps_x_and_y(tmp_path, capsys, picture):
    _register(tmp_path, capsys, "--resize", "input", "--transpose")
    assert get_card("mine").transpose is True
    want = _caffe_default(np.asarray(picture.resize((12, 12), Image.BILINEAR), dtype=np.float32))
    np.testing.assert_allclose(_prepared(picture), want.transpose(0, 2, 1), atol=1e-4)


def test_mean_pixel_scale_and_channel_order(tmp_path, capsys, picture):
    _register(tmp_path, capsys, "--resize", "input", "--mean-pixel", "10,20,30", "--scale", "0.5",
              "--channel-order", "RGB")
    card = get_card("mine")
    assert (card.mean, card.scale, card.channel_order) == ((10.0, 20.0, 30.0), 0.5, "RGB")
    rgb = np.asarray(picture.resize((12, 12), Image.BILINEAR), dtype=np.float32).transpose(2, 0, 1)
    want = (rgb - np.array([10, 20, 30], np.float32)[:, None, None]) * 0.5
    np.testing.assert_allclose(_prepared(picture), want, atol=1e-4)


def test_mean_file(tmp_path, capsys, picture):
    from zoo.convert.proto import caffe_pb2

    mean = np.stack([np.full((4, 4), v, np.float32) for v in (50.0, 60.0, 70.0)])
    blob = caffe_pb2.BlobProto(channels=3, height=4, width=4, num=1)
    blob.data.extend(mean.ravel().tolist())
    path = tmp_path / "mean.binaryproto"
    path.write_bytes(blob.SerializeToString())
    _register(tmp_path, capsys, "--resize", "input", "--mean", path)
    card = get_card("mine")
    assert card.mean is None and card.mean_from_file
    from zoo import api

    prep = api.preprocess_for(card, {"mean": path})
    assert tuple(prep.mean) == (50.0, 60.0, 70.0)


def test_input_size_is_what_pictures_are_fitted_to(tmp_path, capsys, picture):
    _register(tmp_path, capsys, "--input-size", "16x20", "--resize", "input")
    assert get_card("mine").input_size == (16, 20)
    assert _prepared(picture).shape == (3, 16, 20)


def test_train_val_transform_param_gives_the_defaults(tmp_path, capsys):
    body = (MTCNN / "det1.prototxt").read_text().split("\n", 6)[6]  # the layers after the input_dim lines
    proto = tmp_path / "train_val.prototxt"
    proto.write_text('name: "PNet"\nlayer { name: "data" type: "Data" top: "data" top: "label"\n'
                     '  include { phase: TEST }\n'
                     '  transform_param { crop_size: 12 scale: 0.25 mean_value: 127 mean_file: "/home/a/mean.bp" }\n'
                     '  data_param { source: "val_lmdb" batch_size: 10 } }\n' + body)
    _, err = _register(tmp_path, capsys, proto=proto)
    card = get_card("mine")
    assert (card.scale, card.mean, card.input_size) == (0.25, (127.0, 127.0, 127.0), (12, 12))
    assert "mean file 'mean.bp'" in err and "--mean" in err
    _register(tmp_path, capsys, "--scale", "2", proto=proto)  # what the user says wins
    assert get_card("mine").scale == 2.0


def test_info_shows_every_preprocessing_field(tmp_path, capsys):
    _register(tmp_path, capsys, "--resize", "input", "--transpose", "--mean-pixel", "1,2,3", "--scale", "0.5",
              "--channel-order", "RGB", "--input-size", "16")
    code, out, err = run(capsys, "info", "mine")
    assert code == 0, err
    for text in ("16x16 RGB", "mean pixel (1, 2, 3)", "times 0.5", "transposed", "resize to 16x16"):
        assert text in out


def test_labels_without_a_picture_give_a_tip(tmp_path, capsys):
    labels = tmp_path / "l.txt"
    labels.write_text("no\nyes\n")
    out, _ = _register(tmp_path, capsys, "--labels", labels)
    assert "--test-picture" in out


@pytest.mark.parametrize("option, value", [("--resize", "abc"), ("--resize", "-3"), ("--input-size", "0x4"),
                                           ("--input-size", "1x2x3")])
def test_bad_preprocessing_option_is_a_usage_error(tmp_path, capsys, option, value):
    code, _, err = run(capsys, "convert", MTCNN / "det1.prototxt", "-o", tmp_path / "x", "--name", "mine",
                       option, value)
    assert code == 2 and option in err
    assert not list(tmp_path.iterdir())
