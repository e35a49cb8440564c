"""The `zoo` command: a thin typer app; each area registers its own commands."""

from __future__ import annotations

import errno
import sys
import typing
import warnings

import typer

from zoo.errors import UsageError, UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Caffe model zoo for DeepDream: convert, fetch, classify, dream and train.",
)


def _say(text: str) -> None:
    """One line on stderr (rich only when it is printed: its import is a tenth of `zoo convert`)."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(text, markup=False)


# `zoo convert` and `zoo info` register only their own module: the dream, train and zoo command
# modules (and what they import) are a third of the converter's start-up. That module registers two
# commands, so typer keeps `zoo CMD` a sub-command.
# `zoo dream` likewise registers only the dream module (dream, atlas, layers, labels) and skips
# pydantic: its own start-up is what a user waits for before every dream.
FAST_COMMANDS = ("convert", "info", "dream")
_registered: list = []


def _command_modules(command: str | None) -> list:
    """The modules that register `command` when it is a fast one, else every command module."""
    if command in ("convert", "info"):
        from zoo.convert import cli as convert_cli

        return [convert_cli]
    from zoo.dream import cli as dream_cli

    if command == "dream":
        return [dream_cli]
    from zoo import cli_zoo
    from zoo.convert import cli as convert_cli
    from zoo.studio import cli as studio_cli
    from zoo.train import cli as train_cli

    return [convert_cli, cli_zoo, dream_cli, train_cli, studio_cli]


def _register_for(argv: list) -> None:
    """Register the invoked command's module if it is a fast one, else every command (once each)."""
    for module in _command_modules(argv[0] if argv and argv[0] in FAST_COMMANDS else None):
        if module not in _registered:
            module.register(app)
            _registered.append(module)


def _quick(args: list) -> typing.Callable[[], object] | None:
    """A fast command parsed without typer (zoo.quick_parse), ready to call; None: typer parses."""
    if not args or args[0] not in FAST_COMMANDS:
        return None
    from zoo.quick_parse import quick_call

    command = typer.main.get_command(app).commands.get(args[0])
    func = next((c.callback for c in app.registered_commands if (c.name or "") == args[0]), None)
    return quick_call(command, func, args[0], list(args[1:])) if command is not None and func is not None else None


def main(argv: list[str] | None = None) -> int:
    """Run the app; user errors become one line on stderr and exit code 1 (2 for a refused option)."""
    args = sys.argv[1:] if argv is None else list(argv)
    from zoo.cli_output import drawing

    with warnings.catch_warnings(), drawing():  # the library's progress events (zoo.events) drawn on stderr
        # PIL reads past a damaged EXIF block with a UserWarning (two lines of its source each): zoo
        # needs only the orientation and its recipe from it, and a picture it cannot read is refused
        # in one line anyway
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        return _run(args)


# the machine, not zoo, refused: a full disk, a size limit, a quota, a folder nobody may write to
_MACHINE_REFUSED = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS}


def _refused(e: OSError) -> str:
    """One line for an OSError the user can act on: the file (when the OS named it) and why."""
    why = e.strerror or str(e)
    return f"cannot write {e.filename}: {why}" if e.filename else f"a write failed: {why} (is the disk full?)"


def _run(args: list[str]) -> int:
    _register_for(args)
    try:
        quick = _quick(args)
        if quick is not None:
            try:
                quick()
                return 0
            except typer.BadParameter:  # raised while a command checks its options, before it acts:
                pass  # typer parses again and words the error as for any usage error
        rc = app(args=args, standalone_mode=False)
    except UserError as e:  # a UsageError (a refused option value) exits 2, as typer's usage errors do
        _say(f"error: {e}")
        return 2 if isinstance(e, UsageError) else 1
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except OSError as e:
        if e.errno not in _MACHINE_REFUSED:
            raise
        _say(f"error: {_refused(e)}")
        return 1
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
