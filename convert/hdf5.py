"""HDF5 files read only their own bytes: external storage, virtual datasets, soft and external
links are refused by name before any dataset is read.

h5py follows all of these silently: a dataset with external storage reads any file on the machine
(`/etc/passwd` into an ONNX), a virtual dataset or an external link reads another HDF5 file, a soft
link aliases another object. None of Caffe's snapshots or zoo's packs uses them, so the whole tree
is walked first (links looked at, not followed) and the first such object is named in one line.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

MAX_OBJECTS = 1 << 16  # no snapshot or pack comes near; a bigger tree is hostile (or a hard-link loop)


class UnsafeHDF5(ValueError):
    """An HDF5 object that would read outside the file."""


def _dataset_problem(ds) -> str | None:
    """What makes a dataset read outside its file, if anything (low level: nothing is read)."""
    from h5py import h5d

    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5d.VIRTUAL:
        return "a virtual dataset (it reads other files)"
    if plist.get_external_count() > 0:
        return "external storage (it reads another file)"
    return None


def check_tree(f, where: Callable[[str], str] = str) -> None:
    """Walk every group of an open h5py File and raise UnsafeHDF5 naming the first soft link,
    external link, external-storage or virtual dataset (`where` turns an HDF5 path into the
    message's prefix)."""
    import h5py

    todo, seen = [("/", f)], 0
    while todo:
        name, group = todo.pop()
        for key in group:
            seen += 1
            if seen > MAX_OBJECTS:
                raise UnsafeHDF5(f"{where(name)}: more than {MAX_OBJECTS} objects; refusing to read it")
            path = f"{name.rstrip('/')}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.SoftLink):
                raise UnsafeHDF5(f"{where(path)} is a soft link to {link.path}; refusing to follow it")
            if isinstance(link, h5py.ExternalLink):
                raise UnsafeHDF5(f"{where(path)} is an external link to {link.filename}; refusing to follow it")
            if not isinstance(link, h5py.HardLink):
                raise UnsafeHDF5(f"{where(path)} is a user-defined link; refusing to follow it")
            obj = group[key]
            if isinstance(obj, h5py.Group):
                todo.append((path, obj))
            elif isinstance(obj, h5py.Dataset):
                problem = _dataset_problem(obj)
                if problem:
                    raise UnsafeHDF5(f"{where(path)} uses {problem}; refusing to read it")


def open_checked(path: str | Path):
    """h5py.File(path, "r") after check_tree proved it reads only itself (UnsafeHDF5 otherwise)."""
    import h5py

    f = h5py.File(path, "r")
    try:
        check_tree(f, lambda p: f"{path}: {p}")
    except BaseException:
        f.close()
        raise
    return f
