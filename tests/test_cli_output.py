"""Tables that pipe and fit, `--json`, help and progress bars at 80 columns: real `zoo` processes,
piped (stdout a pipe) and on a pseudo-terminal 80 columns wide."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ZOO = [sys.executable, "-m", "zoo.cli"]


def piped(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*ZOO, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80"})
    if check:
        assert done.returncode == 0, done.stderr
    return done


def on_terminal(*args: str, cols: int = 80) -> str:
    """stdout and stderr of `zoo ARGS` on a pseudo-terminal `cols` wide, escape codes and all."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    env = {**os.environ, "COLUMNS": str(cols), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([*ZOO, *args], stdout=side, stderr=side, stdin=subprocess.DEVNULL, env=env)
    os.close(side)
    chunks = []
    while True:
        try:
            data = os.read(main, 1 << 16)
        except OSError:  # the process closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    assert proc.wait(timeout=300) == 0
    return b"".join(chunks).decode("utf-8", "replace")


def screen_lines(raw: str) -> list[str]:
    """What a terminal would show, roughly: escape sequences dropped, carriage returns start a new line."""
    import re

    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r\n", "\n").replace("\r", "\n")
    return [line.rstrip() for line in text.split("\n") if line.strip()]


def test_list_piped_is_plain_tab_separated_and_greps_the_whole_row():
    names = [m["name"] for m in json.loads(piped("list", "--json").stdout)]
    assert "finetune_flickr_style" in names and "bvlc_reference_caffenet" in names
    lines = piped("list").stdout.splitlines()
    assert lines[0].split("\t") == ["name", "task", "input", "classes", "download", "size", "cached"]
    assert [line.split("\t")[0] for line in lines[1:]] == names
    assert all(line.count("\t") == 6 for line in lines)
    grep = subprocess.run(f"{' '.join(ZOO)} list | grep flickr_style", shell=True, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "COLUMNS": "80"})
    (row,) = grep.stdout.splitlines()
    assert row.split("\t")[:4] == ["finetune_flickr_style", "classify", "227x227 BGR", "20"]


def test_labels_piped_keep_each_label_on_its_own_line():
    """`zoo labels ... | grep` finds a long label whole (before, lines were wrapped at 80 columns)."""
    lines = piped("labels", "efficientnet_lite0", "--grep", "whale").stdout.splitlines()
    assert "  147  grey whale, gray whale, devilfish, Eschrichtius gibbosus, Eschrichtius robustus" in lines, lines
    assert len(lines) == 2, lines


def test_list_on_an_80_column_terminal_never_cuts_a_name():
    names = [m["name"] for m in json.loads(piped("list", "--json").stdout)]
    lines = screen_lines(on_terminal("list"))
    firsts = [line.split()[0] for line in lines if line and not line.startswith(" ")]
    assert set(names) <= set(firsts), sorted(set(names) - set(firsts))
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "".join(lines)


def test_info_layers_labels_json_parse(tmp_path: Path):
    card = json.loads(piped("info", "mtcnn_det3", "--json").stdout)
    assert card["name"] == "mtcnn_det3" and card["input"] == [48, 48] and card["files"]["weights"]["filename"]
    proto = tmp_path / "tiny.prototxt"
    proto.write_text('name: "tiny"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
                     'layer { name: "c" type: "Convolution" bottom: "data" top: "c"\n'
                     '  convolution_param { num_output: 4 kernel_size: 3 } }\n')
    net = json.loads(piped("info", str(proto), "--json").stdout)
    conv = next(b for b in net["blobs"] if b["blob"] == "c")
    assert conv["shape"] == [1, 4, 6, 6] and conv["params"] == 4 * 3 * 3 * 3 + 4  # weights and bias
    assert conv["mult_adds"] == 4 * 6 * 6 * 27
    table = piped("info", str(proto)).stdout.splitlines()
    assert "c\tConvolution\t1×4×6×6\t112\t3.9K" in table[2:]  # 3.9K = 3888 mult-adds
    layers = json.loads(piped("layers", "efficientnet_lite0", "--json").stdout)
    block10 = next(b for b in layers["blobs"] if b["blob"] == "block10/output")
    assert block10["channels"] == 112 and block10["shape"] == [112, 14, 14]  # EfficientNet-Lite0's stage 5, stride 16
    fish = json.loads(piped("labels", "efficientnet_lite0", "--grep", "goldfish", "--json").stdout)
    assert fish == [{"index": 1, "label": "goldfish, Carassius auratus"}]


@pytest.mark.parametrize("command", [[], ["list"], ["info"], ["convert"], ["classify"], ["fetch"], ["dream"],
                                     ["layers"], ["labels"], ["atlas"], ["train"], ["export"], ["data", "pack"],
                                     ["studio"]])
def test_help_is_not_cut_at_80_columns(command):
    text = piped(*command, "--help").stdout
    assert "Usage" in text and "…" not in text, text


def test_progress_bars_read_at_80_columns():
    """The CLI's renderer draws a training bar and a download bar: counts, loss and ETA all visible."""
    from rich.console import Console

    from zoo.cli_output import Renderer
    from zoo.events import Event

    def drawn(*events: Event) -> list[str]:
        buf = io.StringIO()
        draw = Renderer(Console(file=buf, width=80, force_terminal=True, color_system=None))
        for event in events:
            draw(event)
        draw.close()
        lines = screen_lines(buf.getvalue())
        assert max(len(line) for line in lines) <= 80, lines
        return lines

    train = Event("train", 60, 1000, "it", key="train det3_gender", info="loss 0.412 lr 1.0e-02 44 img/s")
    line = drawn(train)[-1]
    assert "loss 0.412 lr 1.0e-02 44 img/s" in line and "60/1000" in line and line.count(":") >= 4, line
    download = Event("download", 12_300_000, 51_000_000, "B", key="bvlc_googlenet/bvlc_googlenet.caffemodel")
    lines = drawn(train, download)
    down = [line for line in lines if "MB" in line][-1]
    assert "12.3/51.0 MB" in down and down.count(":") >= 4, down  # elapsed and ETA, whole
    both = [line for line in lines if "train det3" in line][-1]
    assert "loss 0.412" in both and "60/1000" in both and both.count(":") >= 4, both


def test_pack_draws_a_readable_bar_on_an_80_column_terminal(tmp_path: Path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(tmp_path / "set" / cls / f"{i}.png")
    lines = screen_lines(on_terminal("data", "pack", str(tmp_path / "set"), "--size", "16"))
    bars = [line for line in lines if "packing" in line]
    assert bars and "12/12" in bars[-1] and max(len(line) for line in bars) <= 80, lines


def test_the_offline_fallback_is_said_once_and_not_announced_as_a_fetch_again(tmp_path: Path):
    """No network (every request sent to a closed port through the proxy variables): the first
    default dream says in one line that the built-in brain dreams instead; later ones say nothing of
    bvlc_googlenet (they used to print "fetching bvlc_googlenet" on every run)."""
    from skimage import data

    photo = tmp_path / "coffee.png"
    Image.fromarray(data.coffee()[::8, ::8]).save(photo)
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home"), "http_proxy": "http://127.0.0.1:1",
           "https_proxy": "http://127.0.0.1:1", "HTTP_PROXY": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1"}
    env.pop("no_proxy", None), env.pop("NO_PROXY", None)
    runs = [subprocess.run([*ZOO, "dream", str(photo), "-o", str(tmp_path / f"d{k}.png"), "--octaves", "1",
                            "--iterations", "1"], capture_output=True, text=True, timeout=300, env=env)
            for k in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert "bvlc_googlenet cannot be fetched, so the built-in efficientnet_lite0 dreams instead" in runs[0].stderr
    assert "bvlc_googlenet" not in runs[1].stderr and "on efficientnet_lite0" in runs[1].stderr, runs[1].stderr
