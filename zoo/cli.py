"""The `zoo` command: a thin typer app; each area registers its own commands."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from zoo.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Caffe model zoo for DeepDream: convert, fetch, classify, dream and train.",
)
err = Console(stderr=True, highlight=False, soft_wrap=True)


# Commands whose module alone is registered when they are the one invoked: `zoo convert` then skips
# importing the dream, train and zoo command modules (and what they import), a third of its start-up.
# The module must register at least two commands, so that typer keeps `zoo CMD` a sub-command.
COMMAND_MODULES = ("zoo.convert.cli", "zoo.cli_zoo", "zoo.dream.cli", "zoo.train.cli")
FAST_COMMANDS = {"convert": "zoo.convert.cli", "info": "zoo.convert.cli"}
_registered: list[str] = []


def _register(modules) -> None:
    import importlib

    for name in modules:
        if name not in _registered:
            importlib.import_module(name).register(app)
            _registered.append(name)


def _register_for(argv: list[str]) -> None:
    """Register the invoked command's module if it is a fast one, else every command."""
    fast = FAST_COMMANDS.get(argv[0]) if argv else None
    _register([fast] if fast else COMMAND_MODULES)


def main(argv: list[str] | None = None) -> int:
    """Run the app; user errors become one line on stderr and exit code 1."""
    _register_for(sys.argv[1:] if argv is None else list(argv))
    try:
        rc = app(args=argv, standalone_mode=False)
    except UserError as e:
        err.print(f"error: {e}", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        return 130
    except typer.Exit as e:
        return e.exit_code
    except Exception as e:  # click's usage errors (typer vendors click) carry their own exit code: 2
        if hasattr(e, "show") and isinstance(getattr(e, "exit_code", None), int):
            e.show()
            return e.exit_code
        if type(e).__name__ == "Abort":
            return 1
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
