"""The built-in efficientnet_lite0 entry of models.toml is exactly what zoo.register writes from a fresh
build: the same text, byte for byte, and the same card as `zoo info` reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MODELS, shared_or_skip
from zoo import register
from zoo.errors import UserError
from zoo.io import file_digest
from zoo.registry import BUILTIN_TOML, parse_card, parse_toml


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return register.builtin_card_table(tmp_path_factory.mktemp("builtin"))


def test_the_shipped_entry_is_what_register_writes(table: dict) -> None:
    text = BUILTIN_TOML.read_text(encoding="utf-8")
    assert register.with_builtin_entry(text, table) == text  # run scripts/builtin_card.py when this fails
    shipped = parse_toml(BUILTIN_TOML)["efficientnet_lite0"]
    assert parse_card("efficientnet_lite0", table, "fresh").to_table() == shipped.to_table()


def test_the_entry_records_the_shared_conversion(table: dict) -> None:
    """Independent of the build: the checksum is the one of ../shared/models' caffemodel, and the blob
    shapes are the ones OpenCV dnn computes from the shared prototxt at 224x224."""
    import cv2
    import numpy as np

    ref = shared_or_skip(MODELS / "efficientnet_lite0")
    assert table["files"]["weights"]["sha256"] == file_digest(ref / "efficientnet_lite0.caffemodel", "sha256")
    net = cv2.dnn.readNetFromCaffe(str(ref / "deploy.prototxt"), str(ref / "efficientnet_lite0.caffemodel"))
    net.setInput(np.zeros((1, 3, 224, 224), np.float32))
    names = [b["name"] for b in table["dream_blobs"]]
    got = net.forward(names)
    assert [list(g.shape[1:]) for g in got] == [b["shape"] for b in table["dream_blobs"]]


def test_an_entry_is_replaced_in_place_and_checked(table: dict) -> None:
    text = "# head\n\n[models.a]\nx = 1\n\n[models.efficientnet_lite0]\nold = 1\n\n[models.efficientnet_lite0.labels]\n" \
           "y = 2\n\n\n# --- next\n[models.b]\nz = 3\n"
    new = register.with_builtin_entry(text, table)
    assert new.startswith("# head\n\n[models.a]\nx = 1\n\n[models.efficientnet_lite0]\ntitle = ")
    assert new.endswith('\n\n\n# --- next\n[models.b]\nz = 3\n') and "old = 1" not in new and "y = 2" not in new
    with pytest.raises(UserError, match="found 0"):
        register.with_builtin_entry("[models.a]\n", table)
    with pytest.raises(UserError, match="mean"):
        register.with_builtin_entry(text, {k: v for k, v in table.items() if k != "mean"})


def test_write_builtin_card_writes_the_file_behind_a_link(table: dict, tmp_path: Path) -> None:
    real = tmp_path / "models.toml"
    real.write_text(BUILTIN_TOML.read_text(encoding="utf-8").replace('default_blob = "block10/output"\n\n'
                                                                    '[models.efficientnet_lite0.labels]',
                                                                    'default_blob = "stem"\n\n'
                                                                    '[models.efficientnet_lite0.labels]'))
    link = tmp_path / "link.toml"
    link.symlink_to(real)
    assert register.write_builtin_card(link) is True
    assert link.is_symlink() and real.read_text(encoding="utf-8") == BUILTIN_TOML.read_text(encoding="utf-8")
