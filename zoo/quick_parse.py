"""Parse a typer command's arguments with the standard library, for the commands that must start fast.

typer 0.29 coerces every value through pydantic: importing it and building its validators is 0.2 s,
a third of a whole `zoo convert`. The command stays defined once, by its typer signature; this reads
typer's own resolved parameters (option names, flags, repeatable options, path checks) and parses
the plain cases. Anything else (help, a usage error, a missing file, a type or check it does not
know) answers None and typer parses as usual, so every message a user sees is typer's.
"""

from __future__ import annotations

import os
import re
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any

_SCALARS = (str, int, float, Path)
_NUMBER = {int: re.compile(r"[+-]?[0-9]+"), float: re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")}


def quick_call(command: Any, func: Any, name: str, args: list[str]) -> Any:
    """`func` ready to call as typer would call it for `zoo NAME ARGS`, or None: let typer parse.

    A command that takes a typer.Context (zoo dream, to relaunch itself under torchrun) gets a real
    one, built without parsing: its params, and COMMANDLINE as the source of each option given."""
    parsed = _parse(command, args)
    if parsed is None:
        return None
    params, given = parsed
    import inspect

    from typer import Context
    from typer._click.core import ParameterSource

    hints = typing.get_type_hints(func)
    ctx_names = [p for p in inspect.signature(func).parameters
                 if isinstance(hints.get(p), type) and issubclass(hints[p], Context)]
    if ctx_names:
        ctx = Context(command, info_name=name)
        ctx.params = dict(params)
        for p in given:
            ctx.set_parameter_source(p, ParameterSource.COMMANDLINE)
        params = {**params, ctx_names[0]: ctx}
    return lambda: func(**params)


def quick_params(command: Any, args: list[str]) -> dict[str, Any] | None:
    """The parameters `command` (typer's click command) would get from `args`, or None: let typer parse."""
    parsed = _parse(command, args)
    return None if parsed is None else parsed[0]


def _parse(command: Any, args: list[str]) -> tuple[dict[str, Any], set[str]] | None:
    """quick_params's parameters and the names of those given on the command line."""
    layout = _layout(command)
    if layout is None:
        return None
    given = _given(list(args), *layout)
    if given is None:
        return None
    params: dict[str, Any] = {}
    for p in command.params:
        if p.name not in given:
            if p.required:
                return None
            params[p.name] = p.default
            continue
        ok, value = _coerce(p, given[p.name])
        if not ok:
            return None
        params[p.name] = value
    return params, set(given)


def _layout(command: Any) -> tuple[dict[str, Any], list[Any], Any] | None:
    """(option name -> parameter, positional arguments, the variadic argument), or None for a command
    with anything this does not parse (callbacks, prompts, environment variables, nargs)."""
    options: dict[str, Any] = {}
    positionals = []
    variadic = None  # one argument that takes every positional (zoo dream's inputs), alone
    for p in command.params:
        if not p.expose_value or p.envvar or p.callback or getattr(p, "prompt", None):
            return None
        if type(p).__name__ == "TyperArgument" and p.nargs == -1 and variadic is None:
            variadic = p
        elif p.nargs != 1:
            return None
        elif type(p).__name__ == "TyperArgument":
            positionals.append(p)
        else:
            for opt in (*p.opts, *p.secondary_opts):
                options[opt] = p
    return options, positionals, variadic


def _given(queue: list[str], options: dict[str, Any], positionals: list[Any], variadic: Any) -> dict[str, Any] | None:
    """The raw text of each parameter given on the command line, or None: let typer parse."""
    given: dict[str, Any] = {}
    while queue:
        arg = queue.pop(0)
        if arg.startswith("-") and arg != "-":
            if not _option(arg, queue, options, given):
                return None
        elif variadic is not None:
            given.setdefault(variadic.name, []).append(arg)
        else:
            if len(positionals) <= sum(1 for q in positionals if q.name in given):
                return None  # one positional too many
            nxt = next(q for q in positionals if q.name not in given)
            given[nxt.name] = arg
    if variadic is not None and (positionals or variadic.name not in given):
        return None  # shared out among several arguments, or none given: typer's defaults and words
    return given


def _option(arg: str, queue: list[str], options: dict[str, Any], given: dict[str, Any]) -> bool:
    """Record option `arg` (taking its value from `queue`) in `given`; False: let typer parse."""
    name, eq, attached = arg.partition("=") if arg.startswith("--") else (arg, "", "")
    p = options.get(name)
    if p is None:
        return False  # unknown option, --help, --, or short options run together
    if getattr(p, "is_flag", False):
        given[p.name] = name not in p.secondary_opts
        return not eq
    if not eq and not queue:
        return False  # an option without its value
    value = attached if eq else queue.pop(0)
    if p.multiple:
        given.setdefault(p.name, []).append(value)
    elif p.name in given:
        return False  # given twice: typer decides which wins
    else:
        given[p.name] = value
    return True


def _coerce(p: Any, raw: Any) -> tuple[bool, Any]:
    """(True, value) for an annotation this knows, with typer's path checks passed; else (False, None)."""
    if getattr(p, "is_flag", False):
        return (True, raw) if isinstance(raw, bool) else (False, None)
    kind = _plain(p.type_descriptor.annotation)
    if p.multiple or p.nargs == -1:
        if typing.get_origin(kind) is not list:
            return False, None
        (kind,) = typing.get_args(kind)
        out = [_scalar(kind, v, p.type_descriptor.parameter_info) for v in raw]
        return (None not in out, out if None not in out else None)
    value = _scalar(kind, raw, p.type_descriptor.parameter_info)
    return value is not None, value


def _plain(annotation: Any) -> Any:
    """X for `X | None` and `Optional[X]`; the annotation itself otherwise."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _scalar(kind: Any, raw: str, info: Any) -> Any:
    """The value, or None where typer must answer (a bad number, an unknown choice, a path check)."""
    if isinstance(kind, type) and issubclass(kind, Enum):
        if getattr(info, "case_sensitive", True) is False:
            return None
        return next((m for m in kind if m.value == raw), None)
    lo, hi = getattr(info, "min", None), getattr(info, "max", None)
    if kind not in _SCALARS:
        return None
    if (lo is not None or hi is not None) and (kind not in _NUMBER or getattr(info, "clamp", False)):
        return None
    if kind is Path:
        return _path(Path(raw), info)
    if kind in _NUMBER and not _NUMBER[kind].fullmatch(raw):
        return None  # "inf", "1_000", a typo: typer's wording
    value = kind(raw)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return None  # out of range: typer words it
    return value


def _path(path: Path, info: Any) -> Path | None:
    if getattr(info, "exists", False) and not path.exists():
        return None
    if path.exists():
        if not os.access(path, os.R_OK):
            return None
        if getattr(info, "dir_okay", True) is False and path.is_dir():
            return None
        if getattr(info, "file_okay", True) is False and not path.is_dir():
            return None
    if getattr(info, "writable", False) or getattr(info, "readable", True) is False or \
            getattr(info, "allow_dash", False) or getattr(info, "path_type", None) is not None:
        return None
    return path.resolve() if getattr(info, "resolve_path", False) else path
