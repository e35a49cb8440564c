"""Class names for a model card: shipped files, files fetched with the model, or inline lists."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from zoo.errors import UserError
from zoo.registry import DATA_DIR, Labels


def _synset(text: str) -> list[str]:
    """`n01440764 tench, Tinca tinca` -> `tench, Tinca tinca` (Caffe's synset_words.txt)."""
    return [line.split(" ", 1)[1] if " " in line else line for line in text.splitlines() if line.strip()]


def _plain(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _places(text: str) -> list[str]:
    """`/a/abbey 0` -> `abbey`, ordered by the index column (categories_places365.txt)."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        path, _, index = line.strip().rpartition(" ")
        rows.append((int(index), path.split("/", 2)[-1].replace("/", " ").replace("_", " ")))
    return [name for _, name in sorted(rows)]


def _places205_csv(text: str) -> list[str]:
    """categoryIndex_places205.csv: `/a/abbey 0` in one column, or `/a/abbey,0` in two."""
    rows = []
    for row in csv.reader(io.StringIO(text)):
        if not row:
            continue
        cell = " ".join(row).replace(",", " ")
        rows.append(cell)
    return _places("\n".join(rows))


PARSERS = {"synset": _synset, "plain": _plain, "places": _places, "places205_csv": _places205_csv}


def synset_ids(path: Path = DATA_DIR / "imagenet_classes.txt") -> list[str]:
    """WordNet ids (n01440764 ...) of the shipped ImageNet class list, in class order."""
    return [line.split(" ", 1)[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_labels(labels: Labels, files: dict[str, Path] | None = None) -> list[str]:
    """The class names, index i = output channel i."""
    if labels.names is not None:
        return list(labels.names)
    if labels.builtin:
        path = DATA_DIR / labels.builtin
    elif labels.file and files and labels.file in files:
        path = files[labels.file]
    else:
        raise UserError(f"labels file {labels.file!r} is not available (fetch the model first)")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise UserError(f"{path}: cannot read labels ({e.strerror or e})") from None
    return PARSERS[labels.format](text)


def label_for(names: list[str], index: int) -> str:
    """A short name for display: the first synonym, or the index when there is no list."""
    if 0 <= index < len(names):
        return names[index].split(",")[0].strip()
    return f"class {index}"


def names_of(label: str) -> list[str]:
    """The comma-separated names of one label ("goldfish, Carassius auratus" -> both), stripped."""
    return [n.strip() for n in label.split(",") if n.strip()]


def _neighbours(names: list[str], index: int) -> str:
    """The classes on either side of one: what tells ImageNet's crane the bird (between bittern and
    limpkin) from crane the machine (between cradle and crash helmet), whose labels are the same."""
    near = [label_for(names, j) for j in (index - 1, index + 1) if 0 <= j < len(names)]
    return f"  (next to {' and '.join(near)})" if near else ""


def match_label(names: list[str], text: str, what: str = "model") -> int:
    """The index of the class `text` names: its full label, any of its comma-separated names
    (case-insensitive), or its index. Ambiguous names list the candidates; unknown ones the closest."""
    import difflib

    key = text.strip()
    if key.isdigit():
        index = int(key)
        if index < len(names):
            return index
        raise UserError(f"{what}: class index {index} is out of range (0-{len(names) - 1})")
    folded = key.casefold()
    exact = [i for i, label in enumerate(names) if label.strip().casefold() == folded]
    if len(exact) == 1:
        return exact[0]
    hits = exact or [i for i, label in enumerate(names) if folded in (n.casefold() for n in names_of(label))]
    if len(hits) == 1:
        return hits[0]
    if hits:
        listed = "\n".join(f"  {i}: {names[i]}{_neighbours(names, i)}" for i in hits)
        raise UserError(f"{what}: class {text!r} is ambiguous; use the index of one of:\n{listed}")
    every = {n.casefold(): i for i, label in enumerate(names) for n in [label, *names_of(label)]}
    close = difflib.get_close_matches(folded, list(every), n=8, cutoff=0.5) or [k for k in every if folded in k]
    picks = list(dict.fromkeys(every[c] for c in close))[:5]
    hint = "\n".join(f"  {i}: {names[i]}" for i in picks)
    hint = f"; closest:\n{hint}" if hint else f" (see `zoo labels {what}`)"
    raise UserError(f"{what}: no class {text!r}{hint}")


def grep_labels(names: list[str], word: str | None = None) -> list[tuple[int, str]]:
    """(index, label) for every label, or those containing `word` (case-insensitive)."""
    w = (word or "").casefold()
    return [(i, label) for i, label in enumerate(names) if w in label.casefold()]
