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


def _register_all() -> None:
    from zoo import cli_zoo
    from zoo.convert import cli as convert_cli
    from zoo.dream import cli as dream_cli
    from zoo.studio import cli as studio_cli
    from zoo.train import cli as train_cli

    for module in (convert_cli, cli_zoo, dream_cli, train_cli, studio_cli):
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> int:
    """Run the app; user errors become one line on stderr and exit code 1."""
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
