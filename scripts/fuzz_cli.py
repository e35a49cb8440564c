"""Long run of the CLI property test (tests/test_cli_property.py): random `zoo` command lines with
mutated arguments, files and environment values; prints each failure (command, env, problem) and a
summary of the time spent per command.

    python scripts/fuzz_cli.py --examples 2000 [--seed 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))  # tests/cli_fuzz.py imports tests.conftest

import cli_fuzz  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from test_cli_property import excluded  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="world folder to keep (default: a temporary one)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="zoo-fuzz-"))
    world = cli_fuzz.make_world(root)
    spent: dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter[str] = collections.Counter()
    failures: list[str] = []

    @settings(max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        argv = data.draw(cli_fuzz.commands(world))
        env = data.draw(cli_fuzz.ENV)
        toml = data.draw(cli_fuzz.user_toml(world))
        if excluded(argv, env):
            return
        before = (cli_fuzz.snapshot(world.inputs), cli_fuzz.snapshot(world.outside),
                  sorted(p.name for p in world.root.iterdir()))
        t = time.perf_counter()
        result = cli_fuzz.run_main(argv, env, world, toml)
        cmd = " ".join(argv[:2]) if argv[:1] == ["data"] else (argv[0] if argv else "(none)")
        spent[cmd] += time.perf_counter() - t
        counts[cmd] += 1
        problems = cli_fuzz.check(result, world, *before)
        if problems:
            short = [p if "\n" not in p else p.splitlines()[0] + " ... " + " | ".join(p.strip().splitlines()[-3:])
                     for p in problems]
            failures.append(f"zoo {' '.join(argv)}  env={env}  toml={toml}\n  " + "\n  ".join(short))
            print(failures[-1], flush=True)

    if args.seed is not None:
        from hypothesis import seed

        run = seed(args.seed)(run)
    run()
    print(f"\n{sum(counts.values())} runs in {root}; {len(failures)} with problems")
    for cmd, n in counts.most_common():
        print(f"  {cmd:10s} {n:5d} runs  {spent[cmd]:7.1f} s  ({spent[cmd] / n:.2f} s each)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
