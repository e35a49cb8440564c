"""Issue 21's low items: cards with non-finite or absurd numbers, a FIFO or a device as input, the
zoo's own home as a dataset, a run record with an unbounded frame_iterations.

Inputs that used to hang (a FIFO, /dev/zero) run the real `zoo` in a child process with a timeout
and an address-space limit, so a regression fails the test instead of hanging or filling memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zoo.cli
from zoo.registry import RegistryError, parse_card

SHARED = Path(__file__).resolve().parents[2] / "shared"
MTCNN = SHARED / "models" / "mtcnn"

GOOD = {"title": "t", "task": "classify", "license": "l", "origin": "o", "input_size": [8, 8],
        "channel_order": "BGR", "mean": [1, 2, 3], "num_classes": 2, "output": "prob", "default_blob": "prob",
        "labels": {"names": ["a", "b"]}, "files": {"prototxt": {"url": "file:///p", "sha256": "0" * 64},
                                                   "weights": {"url": "file:///w", "sha256": "1" * 64}}}


# --- cards -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "key"), [({"mean": [float("nan"), 0, 0]}, "mean"),
                                             ({"mean": [0, float("inf"), 0]}, "mean"),
                                             ({"scale": float("inf")}, "scale"), ({"scale": float("nan")}, "scale"),
                                             ({"input_size": [100_000_000, 100_000_000]}, "input_size"),
                                             ({"resize": 10**9}, "resize")])
def test_cards_refuse_non_finite_and_absurd_numbers(change: dict, key: str) -> None:
    with pytest.raises(RegistryError, match=f"models.toml: \\[models.m\\]: {key} must"):
        parse_card("m", {**GOOD, **change}, "models.toml")
    parse_card("m", GOOD, "models.toml")


def test_a_card_with_nan_mean_is_one_line_from_zoo_list(tmp_path: Path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ZOO_HOME", str(home))
    (home / "models.toml").write_text(
        '[models.m]\ntitle="t"\ntask="classify"\nlicense="l"\norigin="o"\ninput_size=[100000000,100000000]\n'
        'channel_order="BGR"\nmean=[nan,0,0]\nscale=inf\nnum_classes=2\noutput="prob"\ndefault_blob="prob"\n'
        'labels={names=["a","b"]}\nfiles.prototxt={url="file:///p",sha256="' + "0" * 64 + '"}\n'
        'files.weights={url="file:///w",sha256="' + "1" * 64 + '"}\n')
    assert zoo.cli.main(["list"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "input_size" in err and "Traceback" not in err


# --- FIFOs and devices -----------------------------------------------------------------------------


def zoo_child(args: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))\n"
            "from zoo.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "ZOO_HOME": str(cwd / "home"), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def one_error(r: subprocess.CompletedProcess, name: str) -> str:
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines and name in lines[0], r.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize("args", [["convert", "{fifo}", "-o", "out"], ["info", "{fifo}"],
                                  ["dream", "{fifo}", "-o", "out.mp4", "--model", "efficientnet_lite0"],
                                  ["classify", "--model", "efficientnet_lite0", "{fifo}"],
                                  ["dream", "--recipe", "{fifo}"]])
def test_a_fifo_as_input_is_refused_not_waited_on(tmp_path: Path, args: list[str]) -> None:
    suffix = ".mp4" if args[0] == "dream" and "--recipe" not in args else ".png"
    fifo = tmp_path / ("in.prototxt" if args[0] in ("convert", "info") else f"in{suffix}")
    os.mkfifo(fifo)
    r = zoo_child([a.replace("{fifo}", str(fifo)) for a in args], tmp_path)  # a hang is a TimeoutExpired
    line = one_error(r, fifo.name)
    assert "not a regular file" in line or (args[0] == "info" and "no such file" in line)


def test_convert_dev_zero_is_refused_not_read_for_ever(tmp_path: Path) -> None:
    r = zoo_child(["convert", "/dev/zero", "-o", "out"], tmp_path)
    assert "not a regular file" in one_error(r, "/dev/zero")
    r = zoo_child(["convert", str(MTCNN / "det1.prototxt"), "-w", "/dev/zero", "-o", "out"], tmp_path)
    assert "not a regular file" in one_error(r, "/dev/zero")


def test_read_bytes_caps_what_it_reads(tmp_path: Path, monkeypatch) -> None:
    from zoo.convert import errors

    big = tmp_path / "big.prototxt"
    big.write_bytes(b"#" * 5000)
    monkeypatch.setattr(errors, "MAX_READ", 4096)
    with pytest.raises(errors.ConvertError, match="big.prototxt: larger than"):
        errors.read_bytes(big)
    assert errors.read_bytes(big, 10) == b"#" * 10


# --- the zoo's own home is no dataset ----------------------------------------------------------------


@pytest.mark.skipif(not (MTCNN / "det3.caffemodel").is_file(), reason="needs ../shared/models/mtcnn")
@pytest.mark.parametrize("where", ["home", "home/", "home/models/..", "."])
def test_zoo_home_or_a_folder_holding_it_is_no_dataset(tmp_path: Path, monkeypatch, capsys, where: str) -> None:
    home = tmp_path / "home"
    (home / "models" / "a").mkdir(parents=True)
    (home / "models" / "b").mkdir(parents=True)
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    before.append(Path("run"))  # the --out folder the user named may be made; nothing else
    args = ["train", "--dataset", where, "--out", str(tmp_path / "run"), "--max-iter", "1", "-q",
            "--model", str(MTCNN / "det3.prototxt"), "--weights", str(MTCNN / "det3.caffemodel")]
    assert zoo.cli.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "($ZOO_HOME) is not a dataset" in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


# --- a clip's run record ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [10**12, 100_001, 0, -1, "3", 1.5])
def test_run_record_frame_iterations_is_bounded(value: object) -> None:
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe
    from zoo.dream.video import VideoOptions, job_from_json

    from zoo.errors import UserError

    rec = json.loads(Recipe(model="m", weights_sha256="", layers=("a",), params=DreamParams()).to_json())
    opts = {k: v for k, v in VideoOptions().__dict__.items()}
    good = {"recipe": rec, "video": opts, "frames": [0, 1]}
    assert job_from_json(json.dumps(good), "run.json")[1] == VideoOptions()
    bad = {**good, "video": {**opts, "frame_iterations": value}}
    with pytest.raises(UserError, match="run.json: clip recipe field 'video.frame_iterations' is not valid"):
        job_from_json(json.dumps(bad), "run.json")
