"""Datasets, splits, HDF5 packing and the deterministic batch plan."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from zoo.train import augment
from zoo.train.data import AugmentedImages, BatchSampler, Plan, loader
from zoo.train.datasets import DatasetError, keep_classes, resolve, scan_folder, stratified_split
from zoo.train.pack import open_or_pack, pack
from zoo.train.sources import FolderSource, PackedSource

from tests.conftest import SHARED

PAINTINGS = SHARED / "datasets" / "aic_paintings_by_period"


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    """Three classes of real paintings (5, 4, 3 images) plus one file that does not decode."""
    root = tmp_path_factory.mktemp("paintings")
    for cls, n in (("medieval_early_renaissance", 5), ("golden_age_1870s", 4), ("eighteenth_century", 3)):
        (root / cls).mkdir()
        for f in sorted((PAINTINGS / cls).glob("*.jpg"))[:n]:
            shutil.copy(f, root / cls / f.name)
    (root / "golden_age_1870s" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("files at the root are ignored")
    return root


def test_scan_folder_lists_classes_in_order(small_set):
    images = scan_folder(small_set)
    assert images.classes == ["eighteenth_century", "golden_age_1870s", "medieval_early_renaissance"]
    assert len(images.items) == 13
    assert resolve(str(small_set)).classes == images.classes


def test_folder_without_classes_is_one_line_error(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no class folders"):
        scan_folder(tmp_path)
    with pytest.raises(DatasetError, match="no such folder"):
        resolve(str(tmp_path / "missing"))


def test_stratified_split_is_reproducible_and_keeps_every_class():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    tr, va = stratified_split(labels, 0.2, seed=7)
    tr2, va2 = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(17))
    assert np.bincount(labels[va]).tolist() == [2, 1, 1]
    assert np.bincount(labels[tr]).tolist() == [8, 4, 1]
    assert not np.array_equal(va, stratified_split(labels, 0.2, seed=8)[1])


def test_too_small_classes_are_reported_not_fatal():
    kept, notes = keep_classes(np.array([0, 0, 0, 1, 2, 2, 2]), ["a", "b", "c"], 3)
    assert kept == [0, 2]
    assert notes == ["left out 1 classes with fewer than 3 images: b (1)"]


def test_pack_skips_broken_images_and_matches_files(small_set, tmp_path):
    images = scan_folder(small_set)
    res = pack(images, 40, tmp_path / "p.h5", show=False)
    assert res.count == 12 and res.failed == ["golden_age_1870s/broken.jpg"]
    packed = PackedSource(res.path)
    assert packed.labels.tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2]
    folder = FolderSource(images, 40)
    j = folder.paths.index(packed.paths[5])
    assert packed[5].dtype == np.uint8 and packed[5].shape == (40, 40, 3)
    assert np.array_equal(packed[5], folder[j])


def test_open_or_pack_writes_into_the_cache_once(small_set):
    from zoo.train.datasets import data_dir

    images = scan_folder(small_set)
    src, notes = open_or_pack(images, 32, show=False)
    assert src.path.parent == data_dir() / "packs" and any("skipped 1 images" in n for n in notes)
    mtime = src.path.stat().st_mtime_ns
    src2, notes2 = open_or_pack(images, 32, show=False)
    assert src2.path == src.path and notes2 == [] and src.path.stat().st_mtime_ns == mtime
    assert not list(small_set.glob("*.tmp")) and not list(small_set.glob(".zoo-pack*"))


def test_packed_and_unpacked_pipelines_give_identical_batches(small_set, tmp_path):
    images = scan_folder(small_set)
    images.items = [it for it in images.items if not it[0].endswith("broken.jpg")]
    packed = PackedSource(pack(images, 48, tmp_path / "p.h5", show=False).path)
    folder = FolderSource(images, 48)
    assert folder.paths == packed.paths
    tr, _ = stratified_split(packed.labels, 0.25, seed=1)
    plan = Plan(tr, batch=6, seed=1)
    transform = augment.build(augment.DEFAULT_SPEC, (32, 32))
    identity = {c: c for c in range(3)}
    batches = []
    for src, workers in ((packed, 2), (folder, 0)):
        dl = loader(AugmentedImages(src, transform, identity), BatchSampler(plan, 0, 3, 0, 1, 3), workers)
        batches.append(list(dl))
    assert len(batches[0]) == len(batches[1]) == 6
    for (xa, ya), (xb, yb) in zip(*batches, strict=True):
        assert xa.shape == (3, 3, 32, 32)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_plan_shares_one_global_batch_between_ranks():
    plan = Plan(np.arange(10, 30), batch=8, seed=3)
    whole = plan.global_batch(5)
    r0 = plan.micro_batches(5, 0, 2, 2)
    r1 = plan.micro_batches(5, 1, 2, 2)
    assert [s for mb in r0 + r1 for s in mb] == whole
    assert len({i for i, _ in plan.global_batch(0) + plan.global_batch(1)}) == 16  # no repeat in an epoch
    assert len({s for _, s in whole}) == 8


def test_zoo_data_pack_cli(small_set, capsys):
    import zoo.cli

    assert zoo.cli.main(["data", "pack", str(small_set), "--size", "24"]) == 0
    out = capsys.readouterr().out
    assert "12 images, 3 classes, 24x24" in out and "skipped 1 images" in out
    from zoo.train.datasets import data_dir

    assert len(list((data_dir() / "packs").glob(f"{small_set.name}-*-24px-*.h5"))) == 1
    assert zoo.cli.main(["data", "pack", str(small_set / "missing")]) == 1
