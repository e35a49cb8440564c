"""Every option through its three front doors: the CLI (`zoo dream`, `zoo train`), the studio's API and a
recipe (or a training config) accept the same values and refuse the rest with the same one line.

The values tried come from each option's declared bounds and choices; a few refusals are also spelled
out by hand (what a user reads), so a change of wording or of a limit shows here."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from zoo.dream import options as dream_options  # noqa: E402
from zoo.dream.presets import DreamParams  # noqa: E402
from zoo.dream.recipe import Recipe  # noqa: E402

from zoo.cli import main  # noqa: E402
from zoo.errors import UserError  # noqa: E402
from zoo.options import Option  # noqa: E402

BASE = "http://127.0.0.1:7860"
DREAM_DOORS = [o for o in dream_options.DREAM if o.name in dream_options.STUDIO_FIELDS
               and (o.name in dream_options.RECIPE_FIELDS or o in dream_options.PARAMS)]


def refused(o: Option) -> list:
    """Values the declaration refuses: past each bound, the wrong type, not a choice, too long."""
    bad: list = []
    if o.kind in (int, float):
        step = 1 if o.kind is int else 0.5
        if o.lo is not None and o.lo > -(2**62):
            bad.append(o.lo if o.above else (int(o.lo) - 1 if o.kind is int else o.lo - step))
        if o.hi is not None and o.hi < 2**62:
            bad.append(int(o.hi) + 1 if o.kind is int else o.hi + step)
        bad.append("abc")
        if o.kind is int:
            bad.append(1.5)
    if o.choices:
        bad.append("nope")
    if o.max_len is not None:
        bad.append("x" * (o.max_len + 1))
    return bad


def accepted(o: Option) -> list:
    """Values the declaration accepts: each bound that is included, the default, each choice."""
    good: list = [o.default] if o.default not in (None, (), "") else []
    if o.kind in (int, float):
        good += [b for b in (None if o.above else o.lo, o.hi) if b is not None and abs(b) < 2**62]
    good += list(o.choices)
    return [v for v in good if o.problem([v] if o.many else v) is None] or [_typical(o)]


def _typical(o: Option):
    return {"size": "64x48", "model": "efficientnet_lite0", "layers": "block4/output", "guide": "g.png"}.get(o.name, "x")


def cli_line(args: list[str], capsys) -> str:
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2, err
    assert len(err) == 1, err  # one line, no usage block, no traceback
    return err[0].removeprefix("error: ")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from zoo.studio.app import Settings, create_app

    app = create_app(Settings(start_worker=False, warm=False))
    with TestClient(app, base_url=BASE) as c:
        yield c


def studio_line(client, path: str, body: dict) -> str:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    return r.json()["error"]


def recipe_problem(name: str, value) -> str:
    """The message a recipe carrying `value` for option `name` is refused with (its field named)."""
    data = json.loads(Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams()).to_json())
    if name in {o.name for o in dream_options.PARAMS}:
        data["params"][name] = value
    else:
        data[name] = list(value) if isinstance(value, tuple) else value
    with pytest.raises(UserError) as e:
        Recipe.from_json(json.dumps(data), "x.png")
    return str(e.value)


def as_cli(o: Option, value) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [a for v in values for a in (o.flag, v if isinstance(v, str) else json.dumps(v))]


@pytest.mark.parametrize("o", DREAM_DOORS, ids=lambda o: o.name)
def test_a_dream_option_is_refused_alike_by_the_cli_the_studio_and_a_recipe(o, client, capsys):
    for value in refused(o):
        sent = [value] if o.many else value
        line = cli_line(["dream", "--init", "noise", *as_cli(o, sent)], capsys)
        assert line == studio_line(client, "/api/dream", {"init": "noise", o.name: sent}), value
        flag, _, problem = line.partition(": ")
        assert flag == o.flag and problem, line
        if o.name in dream_options.RECIPE_FIELDS or o in dream_options.PARAMS:
            key = f"params.{o.name}" if o in dream_options.PARAMS else o.name
            assert recipe_problem(o.name, sent) == f"x.png: recipe field {key!r} {problem}", value


def typer_kwargs(func, name: str, args: list[str]):
    """What typer itself calls command `func` with for `zoo NAME ARGS` (and the app it parsed with)."""
    import functools

    import typer

    app, seen = typer.Typer(), {}

    @functools.wraps(func)
    def record(**kwargs):
        seen.update(kwargs)

    app.command(name)(record)
    app.command("other")(lambda: None)  # two commands: `zoo NAME ...` stays a sub-command
    app(args=[name, *args], standalone_mode=False)
    return seen, app


def cli_values(args: list[str]) -> list[dict]:
    """What `zoo dream ARGS` hands its command, parsed both ways it can be: by zoo.quick_parse (the
    fast path) and by typer itself; then checked as the command checks them first."""
    import typer
    from zoo.dream import cli as dream_cli

    from zoo.quick_parse import quick_params

    seen, app = typer_kwargs(dream_cli.dream_cmd, "dream", args)
    quick = quick_params(typer.main.get_command(app).commands["dream"], args)
    assert quick is not None, args  # the fast path takes it
    names = dream_options.DREAM.by_name
    return [dream_options.DREAM.from_cli({k: v for k, v in p.items() if k in names}) for p in (seen, quick)]


@pytest.mark.parametrize("o", DREAM_DOORS, ids=lambda o: o.name)
def test_a_dream_option_is_accepted_alike_by_the_cli_the_studio_and_a_recipe(o, client, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"")  # parsing only looks at the name
    for value in accepted(o):
        sent = [value] if o.many else value
        start = [] if o.name == "init" else ["--init", "noise"]
        for checked in cli_values([str(photo), *start, *as_cli(o, sent)]):
            got = list(checked[o.name]) if o.many else checked[o.name]
            assert got == sent or (isinstance(sent, float) and math.isclose(got, sent)), (got, sent)
        r = client.post("/api/dream", json={"init": "noise", o.name: sent})
        assert r.status_code in (200, 400), (value, r.text)  # 400: a later check (a brain, a file) spoke
        if o.name in dream_options.RECIPE_FIELDS or o in dream_options.PARAMS:
            data = json.loads(Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams()).to_json())
            (data["params"] if o in dream_options.PARAMS else data)[o.name] = sent
            Recipe.from_json(json.dumps(data), "x.png")


def test_the_words_a_user_reads(client, capsys):
    """Spelled out by hand: what `zoo dream` and the studio say for a few values users get wrong."""
    cases = [
        (["--octave-scale", "1"], {"octave_scale": 1}, "--octave-scale: must be above 1 and at most 4, not 1"),
        (["--octaves", "0"], {"octaves": 0}, "--octaves: must be between 1 and 32, not 0"),
        (["--step", "1001"], {"step": 1001}, "--step: must be at least 0 and at most 1000, not 1001"),
        (["--iterations", "abc"], {"iterations": "abc"}, '--iterations: must be a whole number, not "abc"'),
        (["--device", "tpu"], {"device": "tpu"}, '--device: must be one of cpu, cuda, not "tpu"'),
        (["--size", "0x5"], {"size": "0x5"}, '--size: "0x5" is out of range (1 to 20000 pixels a side)'),
    ]
    for args, body, says in cases:
        assert cli_line(["dream", "--init", "noise", *args], capsys) == says
        assert studio_line(client, "/api/dream", {"init": "noise", **body}) == says


def test_the_schema_carries_the_declared_limits(client):
    """The page reads its form's limits from /openapi.json: they are the declaration's."""
    props = client.get("/openapi.json").json()["components"]["schemas"]["DreamRequest"]["properties"]
    for o in dream_options.PARAMS:
        p = props[o.name]
        assert p.get("exclusiveMinimum" if o.above else "minimum") == o.lo, o.name
        assert p.get("maximum") == o.hi, o.name
    assert props["octave_scale"]["exclusiveMinimum"] == 1.0 and props["octave_scale"]["maximum"] == 4.0
    assert props["device"]["enum"] == ["cpu", "cuda"]
    assert props["octaves"]["x-zoo-default"] == 4  # DreamParams' default: what the form starts with


# --- training ---------------------------------------------------------------------------------------

def _train_doors():
    from zoo.train.config import TRAIN

    from zoo.studio.models import TRAIN_FIELDS

    return TRAIN.pick(TRAIN_FIELDS)


@pytest.mark.parametrize("o", _train_doors(), ids=lambda o: o.name)
def test_a_train_option_is_refused_alike_by_the_cli_the_studio_and_the_config(o, client, capsys, tmp_path):
    from zoo.train.config import TrainConfig, validate

    for value in refused(o) + ([] if o.kind is not bool else ["yes"]):
        if o.kind is bool:  # a flag takes no value on the CLI; the studio and a config still refuse one
            line = studio_line(client, "/api/train", {"run": "r", o.name: value})
        else:
            line = cli_line(["train", "--dataset", str(tmp_path), *as_cli(o, value)], capsys)
            assert line == studio_line(client, "/api/train", {"run": "r", o.name: value}), value
        with pytest.raises(UserError) as e:
            validate(TrainConfig(**{o.name: value}))
        assert str(e.value) == line, value


@pytest.mark.parametrize("o", _train_doors(), ids=lambda o: o.name)
def test_a_train_option_is_accepted_alike_by_the_cli_the_studio_and_the_config(o, client, tmp_path):
    from zoo.train import cli as train_cli
    from zoo.train.config import TRAIN, TrainConfig, validate

    for value in accepted(o):
        flag = ([o.flag] if value else [f"--no-{o.flag[2:]}"]) if o.kind is bool else as_cli(o, value)
        seen, _ = typer_kwargs(train_cli.train_cmd, "train", flag)
        got = train_cli.given_options({k: v for k, v in seen.items() if k in TRAIN.by_name})[o.name]
        assert got == value or (isinstance(value, float) and math.isclose(got, value)), (got, value)
        r = client.post("/api/train", json={"run": "r", o.name: value})
        assert r.status_code in (200, 400), (value, r.text)  # 400: a later check (the dataset) spoke
        validate(TrainConfig(**{o.name: value}))


def test_names_follow_the_registrys_rule_everywhere(client, capsys, tmp_path):
    """A model name is checked by the registry's own pattern: the CLI, the studio's import and training
    forms (through the schema) refuse `my.net` with the same line."""
    says = "--name: use a letter or digit, then up to 63 letters, digits, '_' or '-', not \"my.net\""
    assert cli_line(["train", "--dataset", str(tmp_path), "--name", "my.net"], capsys) == says
    assert studio_line(client, "/api/train", {"run": "r", "name": "my.net"}) == says
    assert studio_line(client, "/api/brains/import", {"name": "my.net", "prototxt": "a", "weights": "b"}) == says
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    from zoo.names import is_valid_name

    pattern = schemas["ImportRequest"]["properties"]["name"]["pattern"]
    import re

    for name in ("my_det3", "a", "my.net", "-x", "a" * 65, "net-2"):
        assert bool(re.fullmatch(pattern, name)) == is_valid_name(name), name


@pytest.mark.parametrize("o", dream_options.ATLAS.pick(("size", "octaves", "iterations", "step", "seed", "start",
                                                        "blobs", "model")), ids=lambda o: o.name)
def test_an_atlas_option_is_refused_alike_by_the_cli_and_the_studio(o, client, capsys):
    for value in refused(o):
        sent = [value] if o.many else value
        args = [] if o.name == "model" else ["-m", "efficientnet_lite0"]
        line = cli_line(["atlas", *args, *as_cli(o, sent)], capsys)
        assert line == studio_line(client, "/api/atlas", {"model": "efficientnet_lite0", o.name: sent}), value


# --- sound's, strokes' and the journey's options: the studio takes them too ---------------------------

MEDIA_DOORS = [o for o in dream_options.DREAM if o.name in dream_options.STUDIO_MEDIA_FIELDS and o.kind is not bool]


@pytest.mark.parametrize("o", MEDIA_DOORS, ids=lambda o: o.name)
def test_a_media_option_is_refused_alike_by_the_cli_and_the_studio(o, client, capsys):
    for value in _also_refused(o):
        sent = [value] if o.many else value
        line = cli_line(["dream", "--init", "noise", *as_cli(o, sent)], capsys)
        assert line.startswith(f"{o.flag}: "), line
        assert line == studio_line(client, "/api/dream", {"init": "noise", o.name: sent}), value


# --- the legible look's options, --audio and --channels/--batch: CLI-only doors --------------------------

CLI_ONLY = [*dream_options.LEGIBLE, *dream_options.SOUND, *dream_options.VECTOR, dream_options.DREAM["audio"]]

def _also_refused(o: Option) -> list:
    return refused(o) + (["nope"] if o.rule is not None else [])  # --transforms: choices checked by a rule


@pytest.mark.parametrize("o", [o for o in CLI_ONLY if o.kind is not bool], ids=lambda o: o.name)
def test_a_cli_only_option_is_refused_by_the_cli_with_its_declared_line(o, capsys):
    for value in _also_refused(o):
        line = cli_line(["dream", "--init", "noise", *as_cli(o, value)], capsys)
        assert line == o.error(o.from_text(value if isinstance(value, str) else json.dumps(value))), value
        assert line.startswith(f"{o.flag}: "), line


@pytest.mark.parametrize("o", CLI_ONLY, ids=lambda o: o.name)
def test_a_cli_only_option_is_accepted_by_both_parsers(o, tmp_path):
    from zoo.dream.presets import TRANSFORM_SETS

    photo = tmp_path / "photo.png"
    photo.write_bytes(b"")
    values = {"transforms": list(TRANSFORM_SETS), "phase": ["griffinlim"], "stereo": ["midside"]}.get(o.name,
                                                                                                 accepted(o))
    for value in values:
        args = [o.flag] if o.kind is bool else as_cli(o, value)
        for checked in cli_values([str(photo), *args]):
            assert checked[o.name] == (True if o.kind is bool else value), (o.name, value)


def test_the_legible_words_a_user_reads(capsys):
    """Spelled out by hand, so a change of wording or of a limit shows here."""
    cases = [
        (["--look", "nice"], '--look: must be one of auto, classic, legible, not "nice"'),
        (["--param", "rgb"], '--param: must be one of pixels, fft, laplacian, not "rgb"'),
        (["--transforms", "all"], '--transforms: must be one of standard, crops, zoom, light, none, not "all"'),
        (["--diversity", "65"], "--diversity: must be between 1 and 64, not 65"),
        (["--diversity", "2.5"], "--diversity: must be a whole number, not 2.5"),
    ]
    for args, says in cases:
        assert cli_line(["dream", "--init", "noise", *args], capsys) == says
    assert cli_line(["atlas", "-m", "efficientnet_lite0", "--batch", "0"], capsys) == \
        "--batch: must be between 1 and 512, not 0"
    assert cli_line(["atlas", "-m", "efficientnet_lite0", "--channels", "x" * 501], capsys) == \
        "--channels: item 0 is longer than 500 characters"


def test_a_recipe_refuses_what_the_look_options_refuse():
    """A recipe's look is checked by --look's declaration (and may not be empty); balance and guide_mode
    by their own."""
    says = dream_options.DREAM["look"].problem("nice")
    assert recipe_problem("look", "nice") == f"x.png: recipe field 'look' {says}"
    assert recipe_problem("look", None) == "x.png: recipe field 'look' is required"
    assert recipe_problem("balance", [0]) == "x.png: recipe field 'balance' item 0 must be above 1e-30 and at most " \
        "1e+30, not 0"
    assert recipe_problem("guide_mode", "copy") == \
        "x.png: recipe field 'guide_mode' must be one of match, layout, not \"copy\""


def test_recipes_at_the_defaults_leave_the_look_out():
    """Byte for byte: a classic recipe's JSON has none of the legible fields (older zoo reads it)."""
    data = json.loads(Recipe(model="m", weights_sha256="", layers=("b",), params=DreamParams()).to_json())
    assert not {"look", "legible", "balance", "guide_mode", "dpi", "threads", "compile"} & set(data)


def test_the_sound_choices_are_the_sound_modules_own():
    from zoo.dream import audio_run, phase, spectrogram

    assert dream_options.SOUND["freq_scale"].choices == spectrogram.FREQ_SCALES
    for name, owner in (("phase", phase.PHASES), ("stereo", audio_run.STEREO)):
        o = dream_options.SOUND[name]
        assert [v for v in (*owner, "nope") if o.problem(v) is None] == list(owner), name
    assert dream_options.SOUND["stereo"].error("wide") == '--stereo: must be one of channels, midside, not "wide"'
