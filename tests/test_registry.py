"""models.toml: every card parses and is consistent with the real files in ../shared/models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODELS as SHARED_MODELS
from zoo import convert
from zoo.fetch import file_digest
from zoo.labels import load_labels, synset_ids
from zoo.names import InvalidName
from zoo.register import register_card as register_user_model
from zoo.register import unregister as unregister_user_model
from zoo.registry import (
    BUILTIN_TOML,
    RegistryError,
    card_table_from_card,
    load_registry,
    parse_toml,
)

REGISTRY = load_registry(user_path=Path("/nonexistent"))

# The only files without a published checksum (pinned on first download); anything new must say why.
UNVERIFIED = {
    ("googlenet_places365", "weights"),
    ("vgg16", "weights"), ("vgg19", "weights"),
    ("nin_imagenet", "weights"), ("resnet50", "weights"), ("resnet101", "weights"), ("resnet152", "weights"),
    ("alexnet_places365", "weights"), ("vgg16_places365", "weights"), ("resnet152_places365", "weights"),
    ("alexnet_places205", "archive"), ("hybridcnn_places205", "archive"), ("vgg_face", "archive"),
    ("oxford102_alexnet", "weights"),
}

# Model -> (folder in ../shared/models, prototxt, weights or None): the files we can check against.
SHARED_FILES = {
    "bvlc_googlenet": ("bvlc_googlenet", "deploy.prototxt", None),
    "googlenet_places365": ("googlenet_places365", "deploy_googlenet_places365.prototxt", None),
    "gender_net": ("gender_net", "deploy_gender.prototxt", None),
    "age_net": ("age_net", "deploy_age.prototxt", None),
    "mtcnn_det1": ("mtcnn", "det1.prototxt", "det1.caffemodel"),
    "mtcnn_det2": ("mtcnn", "det2.prototxt", "det2.caffemodel"),
    "mtcnn_det3": ("mtcnn", "det3.prototxt", "det3.caffemodel"),
    "efficientnet_lite0": ("efficientnet_lite0", "deploy.prototxt", "efficientnet_lite0.caffemodel"),
}

REQUIRED_MODELS = {"bvlc_googlenet", "googlenet_places205", "googlenet_places365", "gender_net", "age_net",
                   "bvlc_reference_caffenet", "finetune_flickr_style", "mtcnn_det1", "mtcnn_det2", "mtcnn_det3",
                   "efficientnet_lite0"}


def test_every_required_model_is_there() -> None:
    assert set(REGISTRY.names()) >= REQUIRED_MODELS
    assert REGISTRY.get("bvlc_googlenet").files["weights"].checksum.hexdigest == (
        "405fc5acd08a3bb12de8ee5e23a96bec22f08204")


@pytest.mark.parametrize("name", sorted(REGISTRY.names()))
def test_card_is_complete(name: str) -> None:
    card = REGISTRY.get(name)
    assert {"prototxt", "weights"} <= set(card.files)
    for role, spec in card.files.items():
        if (name, role) in UNVERIFIED:
            assert spec.checksum is None and spec.unverified
        elif spec.archive:
            # members come from a verified archive, or one pinned on first download with its members
            assert card.files[spec.archive].checksum is not None or (name, spec.archive) in UNVERIFIED
        else:
            assert spec.checksum is not None, f"{name}.{role} has no checksum"
            size = {"md5": 32, "sha1": 40, "git_blob": 40, "sha256": 64}[spec.checksum.kind]
            assert len(spec.checksum.hexdigest) == size and int(spec.checksum.hexdigest, 16) >= 0
    assert card.default_blob in {b.name for b in card.dream_blobs}
    assert card.mean is not None or "mean" in card.files
    assert card.labels.names is None or len(card.labels.names) == card.num_classes
    assert len(card.dream_blobs) >= 1 and all(b.produces for b in card.dream_blobs)


def test_shipped_imagenet_labels() -> None:
    names = load_labels(REGISTRY.get("bvlc_googlenet").labels)
    ids = synset_ids()
    assert len(names) == len(ids) == 1000 == len(set(ids))
    assert ids[0] == "n01440764" and names[0].startswith("tench")
    assert names[967] == "espresso" and ids[967] == "n07920052"
    assert [n.split(",")[0] for n in names[281:286]] == ["tabby", "tiger cat", "Persian cat", "Siamese cat",
                                                         "Egyptian cat"]


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_checksums_match_the_shared_files(name: str) -> None:
    folder, proto, weights = SHARED_FILES[name]
    card = REGISTRY.get(name)
    # a built-in's prototxt is written here by the Caffe emitter: the same message as the shared file,
    # not the same bytes (tests/test_efficientnet.py compares the messages)
    pairs = ([] if card.builtin else [("prototxt", proto)]) + ([("weights", weights)] if weights else [])
    if "mean" in card.files:
        pairs.append(("mean", next(p.name for p in (SHARED_MODELS / folder).glob("*mean.binaryproto"))))
    for role, filename in pairs:
        expected = card.files[role].checksum
        assert file_digest(SHARED_MODELS / folder / filename, expected.kind) == expected.hexdigest, role


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_dream_blobs_exist_with_the_stated_shapes(name: str) -> None:
    folder, proto, _ = SHARED_FILES[name]
    card = REGISTRY.get(name)
    graph = convert.load_net(SHARED_MODELS / folder / proto)
    h, w = card.input_size
    shapes = graph.shapes((1, 3, h, w))
    for blob in card.dream_blobs:
        assert blob.name in shapes, f"{name}: no blob {blob.name}"
        assert tuple(shapes[blob.name][1:]) == blob.shape, f"{name}: {blob.name}"
    out = shapes[card.output]
    assert out[1] == card.num_classes and all(v == 1 for v in out[2:])


def test_unknown_model_lists_the_closest_names() -> None:
    with pytest.raises(RegistryError, match="did you mean bvlc_googlenet"):
        REGISTRY.get("bvlc_googlnet")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "models.toml"
    p.write_text(text)
    return p


def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    text = BUILTIN_TOML.read_text().replace('task = "classify"', 'task = "classify"\ncolour = "BGR"', 1)
    p = _write(tmp_path, text)
    with pytest.raises(RegistryError, match=r"models\.toml: \[models\.bvlc_googlenet\]: unknown key 'colour'"):
        parse_toml(p)
    p = _write(tmp_path, BUILTIN_TOML.read_text().replace('sha1 = "405fc', 'sha512 = "405fc', 1))
    with pytest.raises(RegistryError, match=r"files\.weights: unknown key 'sha512'"):
        parse_toml(p)


def test_bad_values_are_errors(tmp_path: Path) -> None:
    base = BUILTIN_TOML.read_text()
    for old, new, msg in [
        ('channel_order = "BGR"', 'channel_order = "RBG"', "channel_order"),
        ("input_size = [224, 224]", "input_size = [224]", "input_size"),
        ('sha1 = "405fc5acd08a3bb12de8ee5e23a96bec22f08204"', "", "no checksum"),
        ("num_classes = 1000", 'num_classes = "many"', "wrong type"),
        ('[models.bvlc_googlenet]', '[models.bvlc_googlenet\n', "not valid TOML"),
    ]:
        with pytest.raises(RegistryError, match=msg):
            parse_toml(_write(tmp_path, base.replace(old, new, 1)))


def test_user_models_merge_over_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    base = REGISTRY.get("mtcnn_det3")
    register_user_model("faces_v2", card_table_from_card(base, title="my faces", num_classes=2))
    register_user_model("mtcnn_det3", card_table_from_card(base, title="overridden"))
    reg = load_registry()
    assert reg.get("faces_v2").title == "my faces" and reg.get("faces_v2").files == base.files
    assert reg.get("mtcnn_det3").title == "overridden"
    assert reg.get("bvlc_googlenet") == REGISTRY.get("bvlc_googlenet")  # untouched built-ins stay
    assert unregister_user_model("mtcnn_det3") and not unregister_user_model("mtcnn_det3")
    assert load_registry().get("mtcnn_det3").title == base.title
    with pytest.raises(InvalidName, match="model name"):
        register_user_model("bad name!", card_table_from_card(base))
    with pytest.raises(RegistryError, match="unknown key 'oops'"):
        register_user_model("x", {**card_table_from_card(base), "oops": 1})
