"""Write the built-in efficientnet_lite0 entry of models.toml from a fresh build (zoo.register).

The entry is not edited by hand: its facts live in zoo/efficientnet.py (CARD, DREAM_BLOBS), its
shapes come from the graph and its checksums from the files the build writes.

    python scripts/builtin_card.py           # rewrite the entry if it differs
    python scripts/builtin_card.py --check   # exit 1 if it differs (tests/test_builtin_card.py does this)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from zoo.register import BUILTIN, builtin_card_table, with_builtin_entry, write_builtin_card
from zoo.registry import BUILTIN_TOML


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether the entry is up to date")
    args = ap.parse_args()
    path = BUILTIN_TOML.resolve()
    if args.check:
        text = path.read_text(encoding="utf-8")
        with tempfile.TemporaryDirectory() as folder:
            same = with_builtin_entry(text, builtin_card_table(Path(folder))) == text
        print(f"{path}: [models.{BUILTIN}] {'is what zoo.register writes' if same else 'differs from a fresh build'}")
        return 0 if same else 1
    changed = write_builtin_card(path)
    print(f"{path}: [models.{BUILTIN}] {'rewritten' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
