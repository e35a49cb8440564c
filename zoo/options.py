"""One declaration per option of a front door, and the three things generated from it.

An `Option` holds an option's name, type, default, bounds, choices and help. From it come the typer
parameter of the CLI command (`typer_parameter`), the field of the studio's pydantic request model
(`request_model`) and the check that recipes and configs run (`Option.problem`). So every door (the CLI,
the studio's API, a recipe) accepts the same values and refuses the rest in the same words:
`--octave-scale: must be above 1 and at most 4, not 1`.

Nothing here imports typer or pydantic at module level: `zoo dream` starts without pydantic.
docs/options.md says how to add an option.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

Rule = Callable[[Any], "str | None"]
_METAVAR = {int: "INTEGER", float: "NUMBER", str: "TEXT", Path: "PATH"}
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Option:
    """One option: what it is called, what it takes, and what it refuses.

    `kind` is int, float, str, bool or Path (`many`: a list of them, repeatable on the CLI); `lo`/`hi`
    bound numbers (`above`, `below`: lo, hi themselves excluded); `choices` close a text option; `max_len`,
    `pattern` (with `says`, how a refusal words it) bound a text; `rule` is any further check (None: fine,
    else what is wrong). `flags` are the CLI names (default --name-with-dashes); `required`: None refused;
    `negatable`: a bool option is --x/--no-x (else the flag alone turns it on)."""

    name: str
    kind: type = str
    default: Any = None
    help: str = ""
    lo: float | None = None
    hi: float | None = None
    above: bool = False
    below: bool = False
    choices: tuple[str, ...] = ()
    many: bool = False
    max_items: int = 64
    max_len: int | None = None
    pattern: str | None = None
    says: str = ""
    rule: Rule | None = None
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    required: bool = False
    negatable: bool = False

    @property
    def flag(self) -> str:
        """The option's name on the command line, as every message names it."""
        return next((f for f in self.flags if f.startswith("--")), "--" + self.name.replace("_", "-"))

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` (a JSON-like value: a recipe's, a request's), or None if it is fine."""
        if value is None:
            return "is required" if self.required else None
        if self.many:
            if not isinstance(value, (list, tuple)) or len(value) > self.max_items:
                return f"must be a list of at most {self.max_items} items"
            return next((f"item {i} {p}" for i, p in ((i, self._one(v)) for i, v in enumerate(value)) if p), None)
        return self._one(value)

    def _one(self, v: Any) -> str | None:
        wrong = _TYPE_CHECKS[self.kind](v) or (self._range(v) if self.kind in (int, float) else self._text(v))
        return wrong or (self.rule(v) if self.rule is not None else None)

    def _text(self, v: Any) -> str | None:
        if self.choices and v not in self.choices:
            return f"must be one of {', '.join(self.choices)}, not {_show(v)}"
        if self.max_len is not None and len(str(v)) > self.max_len:
            return f"is longer than {self.max_len} characters"
        if self.pattern is not None and not re.fullmatch(self.pattern, str(v)):
            return f"{self.says or 'must match ' + self.pattern}, not {_show(v)}"
        return None

    def _range(self, v: float) -> str | None:
        lo, hi = self.lo, self.hi
        if self.kind is int:
            if (lo is None or v >= lo) and (hi is None or v <= hi):
                return None
            if lo is not None and hi is not None:
                return f"must be between {int(lo)} and {int(hi)}, not {v}"
            return f"must be at least {int(lo)}, not {v}" if lo is not None else f"must be at most {int(hi)}, not {v}"
        low = lo is not None and (v <= lo if self.above else v < lo)
        high = hi is not None and (v >= hi if self.below else v > hi)
        if not low and not high:
            return None
        first = f"{'above' if self.above else 'at least'} {lo:g}" if lo is not None else ""
        both = " and " if lo is not None and hi is not None else ""
        last = f"{'below' if self.below else 'at most'} {hi:g}" if hi is not None else ""
        return f"must be {first}{both}{last}, not {v:g}"

    def error(self, value: Any) -> str | None:
        """The one line every door prints for a refused value, or None."""
        p = self.problem(value)
        return None if p is None else f"{self.flag}: {p}"

    def check(self, value: Any) -> Any:
        """`value` if it is fine; else a UsageError (exit 2) with the one line."""
        line = self.error(value)
        if line is not None:
            raise UsageError(line)
        return value

    def from_text(self, text: Any) -> Any:
        """A command-line value as the JSON value it stands for: numbers as numbers, the rest as text."""
        if self.many and isinstance(text, (list, tuple)):
            return [self._scalar(t) for t in text]
        return self._scalar(text)

    def _scalar(self, text: Any) -> Any:
        if not isinstance(text, str) or self.kind not in (int, float):
            return text
        if not _NUMBER.fullmatch(text.strip()):
            return text  # refused as "must be a number, not "abc"", as a request's "abc" is
        number = float(text)
        return int(text) if re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) else number

    def help_text(self) -> str:
        """The help line with the limits and choices the option checks (so --help states them)."""
        limits = []
        if self.choices and self.metavar is not None:  # else the metavar lists them already
            limits.append("|".join(self.choices))
        if (self.lo is not None or self.hi is not None) and abs(self.hi or 0) < 2**31:  # not seeds' int64
            lo = "" if self.lo is None else f"{_num(self.lo)} {'<' if self.above else '≤'} "
            hi = "" if self.hi is None else f" {'<' if self.below else '≤'} {_num(self.hi)}"
            limits.append(f"{lo}x{hi}")
        return self.help + (f" \\[{'; '.join(limits)}]" if limits else "")  # \[: a bracket, not rich markup


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _whole(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else f"must be a whole number, not {_show(v)}"


def _finite(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    return None if ok else f"must be a finite number, not {_show(v)}"


def _text(v: Any) -> str | None:
    return None if isinstance(v, (str, Path)) else f"must be text, not {_show(v)}"


def _truth(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, not {_show(v)}"


_TYPE_CHECKS: dict[type, Rule] = {int: _whole, float: _finite, str: _text, Path: _text, bool: _truth}


def _show(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__
    return text if len(text) < 40 else text[:37] + "..."


@dataclass(frozen=True)
class Group:
    """The options of one door (a command, a request), by name, in declaration order."""

    options: tuple[Option, ...]
    by_name: dict[str, Option] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {o.name: o for o in self.options})

    def __getitem__(self, name: str) -> Option:
        return self.by_name[name]

    def __iter__(self):
        return iter(self.options)

    def pick(self, names: Iterable[str]) -> list[Option]:
        return [self.by_name[n] for n in names]

    def values(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every option's value: the given one, else (None or absent) its declared default."""
        return {o.name: o.default if given.get(o.name) is None else given[o.name] for o in self.options}

    def from_cli(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The command's values checked: text as numbers where the option is numeric; UsageError (exit 2,
        one line) on the first refused one."""
        values = dict(raw)
        for name, text in raw.items():
            if name in self.by_name:
                values[name] = self.by_name[name].check(self.by_name[name].from_text(text))
        return values


def name_rule(optional: bool = False) -> dict[str, str]:
    """The limits of an option that names a zoo model (the registry's own rule; `optional`: may be empty)."""
    from zoo.names import NAME_PATTERN, NAME_RULE

    return {"pattern": f"(?:{NAME_PATTERN})?" if optional else NAME_PATTERN, "says": f"use {NAME_RULE}"}


# --- the typer side -----------------------------------------------------------------------------------


def typer_parameter(o: Option, default: Any = None) -> inspect.Parameter:
    """The option as a keyword parameter of a typer command; values arrive as text and the command
    checks them (Group.from_cli), so typer's own coercion never words a refusal."""
    import typer

    names = o.flags or (o.flag,)
    if o.kind is bool:
        shown = (o.flag[2:] if o.default else "no-" + o.flag[2:]) if o.negatable else ""
        if o.negatable:
            names = (f"{o.flag}/--no-{o.flag[2:]}", *(f for f in o.flags if not f.startswith("--")))
        option = typer.Option(*names, help=o.help_text() + (f" \\[default: {shown}]" if shown else ""),
                              show_default=False)
        return inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                 annotation=_annotated(bool | None if o.negatable else bool, option))
    kind = Path if o.kind is Path else str
    if default is not None and not o.many:
        default = str(default)  # as typer hands a text option's default on (quick_parse hands it the same)
    shown = "" if o.default in (None, "", ()) else str(o.default).replace(",", ", ")  # a list wraps, not cut
    text = o.help_text() + (f" \\[default: {shown}]" if shown else "")
    option = typer.Option(*names, help=text, show_default=False, metavar=o.metavar or _metavar(o))
    annotation = list[kind] | None if o.many else kind | None
    return inspect.Parameter(o.name, inspect.Parameter.KEYWORD_ONLY, default=default or None if o.many else default,
                             annotation=_annotated(annotation, option))


def _metavar(o: Option) -> str:
    return "[" + "|".join(o.choices) + "]" if o.choices else _METAVAR.get(o.kind, "TEXT")


def _annotated(annotation: Any, option: Any) -> Any:
    from typing import Annotated

    return Annotated[annotation, option]


# --- the pydantic side (the studio) -------------------------------------------------------------------


def schema_of(o: Option) -> dict[str, Any]:
    """The JSON-schema limits of an option (what the studio's form reads from /openapi.json), with its
    default, its flag and the words of its pattern as x-zoo-* keys."""
    limits: dict[str, Any] = {}
    if o.lo is not None:
        limits["exclusiveMinimum" if o.above else "minimum"] = o.lo
    if o.hi is not None:
        limits["exclusiveMaximum" if o.below else "maximum"] = o.hi
    if o.max_len is not None:
        limits["maxLength"] = o.max_len
    if o.pattern is not None:
        limits["pattern"] = o.pattern
    if o.choices:
        limits["enum"] = list(o.choices)
    meta: dict[str, Any] = {"x-zoo-flag": o.flag}
    if o.default not in (None, "", ()):
        meta["x-zoo-default"] = o.default
    if o.says:
        meta["x-zoo-says"] = o.says
    if o.many:
        base = {int: int, float: float, bool: bool}.get(o.kind, str)
        return {"items": {**limits, "type": _JSON_TYPES[base]}, "maxItems": o.max_items, **meta}
    return {**limits, **meta}


def request_field(o: Option, default: Any = None) -> tuple[Any, Any]:
    """(annotation, Field) of a pydantic model: the option's own check runs first and words a refusal."""
    from typing import Annotated

    from pydantic import BeforeValidator, Field
    from pydantic_core import PydanticCustomError

    def check(value: Any) -> Any:
        line = o.error(value)
        if line is not None:
            raise PydanticCustomError("zoo_option", "{line}", {"line": line})
        return value

    base = {int: int, float: float, bool: bool}.get(o.kind, str)
    annotation = list[base] if o.many else base  # type: ignore[valid-type]
    if not o.required:
        annotation = annotation | None
    extra = schema_of(o)
    if default is not None:
        extra["x-zoo-default"] = default  # this request's own default (an atlas starts with fewer octaves)
    kwargs: dict[str, Any] = {"description": o.help, "json_schema_extra": extra}
    if o.required:
        kwargs["default"] = ...
    elif o.many and default is None:
        kwargs["default_factory"] = list
    else:
        kwargs["default"] = default
    return Annotated[annotation, BeforeValidator(check)], Field(**kwargs)


_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def request_model(name: str, doc: str, options: Iterable[Option], defaults: dict[str, Any] | None = None,
                  extra: dict[str, Any] | None = None) -> type:
    """A pydantic model with one field per option (`defaults` overrides the field default, None when not
    given) and `extra` fields as pydantic's create_model takes them."""
    from pydantic import create_model

    defaults = defaults or {}
    fields = {o.name: request_field(o, defaults.get(o.name)) for o in options}
    model = create_model(name, __doc__=doc, **fields, **(extra or {}))
    return model
