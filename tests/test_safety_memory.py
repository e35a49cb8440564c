"""Issue 21 high 4 and medium 7: what a file declares (pixels, GIF frames, video frames) is checked
against free memory before anything is decoded.

The hostile files are built here byte by byte (a PNG's IHDR, a GIF's logical screen, an mp4's stts
box), not with the code under test. Commands that could exhaust the machine on a regression run in a
child process under an address-space limit (RLIMIT_AS), and the child's peak memory (ru_maxrss) is
measured from the outside.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from zoo import memory
from zoo.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


# --- the rule, pure ------------------------------------------------------------------------------


def test_fits_is_bytes_needed_against_bytes_free() -> None:
    assert memory.fits(900, 1000) and not memory.fits(901, 1000)
    assert memory.fits(0, 0) and not memory.fits(-1, 10**9)
    with pytest.raises(memory.NotEnoughMemory, match=r"^clip.mp4: needs about 1.0 GiB of memory, 512 MiB is free$"):
        memory.check_fits("clip.mp4", 2**30, available=2**29)
    memory.check_fits("small", 10, available=100)


@pytest.mark.parametrize(("text", "want"), [("1500", 1500), ("2K", 2048), ("512M", 512 << 20), ("2G", 2 << 30),
                                            ("1.5g", 3 << 29), ("3GiB", 3 << 30), ("", None), ("lots", None)])
def test_parse_bytes(text: str, want: int | None) -> None:
    assert memory.parse_bytes(text) == want


def test_available_bytes_reads_meminfo_and_the_user_cap(monkeypatch) -> None:
    monkeypatch.delenv("ZOO_MEMORY_LIMIT", raising=False)
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kernel = int(meminfo["MemAvailable"].split()[0]) * 1024
    assert 0.5 * kernel < memory.available_bytes() <= 1.5 * kernel  # free memory moves a little meanwhile
    monkeypatch.setenv("ZOO_MEMORY_LIMIT", "256M")
    assert memory.available_bytes() == 256 << 20


# --- hostile files, built by hand -------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(path: Path, w: int, h: int) -> Path:
    """A valid greyscale PNG of w x h black pixels, compressed row by row (a few hundred KB)."""
    z, row, parts = zlib.compressobj(9), b"\0" * (w + 1), []
    for _ in range(h):
        parts.append(z.compress(row))
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", b"".join(parts))
                     + _chunk(b"IEND", b""))
    return path


def gif_bomb(path: Path, w: int = 20000, h: int = 20000) -> Path:
    """A 40-byte GIF whose logical screen is w x h, with one 1x1 frame (a decompression bomb for
    readers that allocate the screen)."""
    head = b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    path.write_bytes(head + frame + b"\x3b")
    return path


def mp4_declaring(path: Path, frames: int) -> Path:
    """A real 5-frame 16x16 mp4 whose stts box then declares `frames` samples."""
    import av
    import numpy as np

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 16
        s.pix_fmt = "yuv420p"
        for _ in range(5):
            for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = bytearray(path.read_bytes())
    at = data.find(b"stts")
    struct.pack_into(">I", data, at + 12, frames)  # version/flags, entry count, then the first sample count
    path.write_bytes(bytes(data))
    return path


def run_limited(args: list[str], env: dict, limit_gib: float = 4) -> tuple[subprocess.CompletedProcess, int]:
    """Run a zoo command in a child with at most `limit_gib` GiB of address space; (result, peak RSS bytes).

    The peak is the child's own VmHWM, not ru_maxrss: Linux carries the parent's high-water mark into
    ru_maxrss across fork (or vfork) and exec, so inside a long pytest worker that had grown to 1.7 GB
    every child "peaked" at 1.7 GB."""
    code = ("import resource, sys, runpy\n"
            f"resource.setrlimit(resource.RLIMIT_AS, ({int(limit_gib * 2**30)}, {int(limit_gib * 2**30)}))\n"
            "sys.argv = ['zoo'] + sys.argv[1:]\n"
            "from zoo.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1]\n"
            "print('MAXRSS', hwm, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)
    peak = [int(line.split()[1]) * 1024 for line in r.stderr.splitlines() if line.startswith("MAXRSS")]
    return r, (peak[0] if peak else -1)


def errors(r: subprocess.CompletedProcess) -> list[str]:
    """The error lines (notes and progress of the brain built on first use aside)."""
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """The built-in brain built here, once, before any measured child: building it peaks at 1.5 GB,
    which would land in whichever test's child came first on its xdist worker."""
    home = tmp_path_factory.mktemp("home")
    r = subprocess.run([sys.executable, "-m", "zoo.cli", "layers", "efficientnet_lite0"], capture_output=True,
                       text=True, timeout=600, env={**os.environ, "ZOO_HOME": str(home)})
    assert r.returncode == 0, r.stderr[-2000:]
    return home


@pytest.fixture
def env(home: Path) -> dict:
    return {**os.environ, "ZOO_HOME": str(home), "ZOO_MEMORY_LIMIT": "1G", "OMP_NUM_THREADS": "1"}


BRAIN = ["--model", "efficientnet_lite0"]
# A refusing child (torch, ONNX Runtime and the brain loaded) peaked at 140-400 MB here (classify 138,
# GIF 145, mp4 266, dream 395); what it must never do is decode: a 12000^2 picture as float is 1.7 GB
# more, a list of 2e9 frames 16 GB.
PEAK = 600 << 20


def test_header_of_a_12000_square_png_is_read_without_decoding(tmp_path: Path) -> None:
    png = png_declaring(tmp_path / "big.png", 12000, 12000)
    assert png.stat().st_size < 1 << 20
    head = memory.image_header(png)
    assert (head.width, head.height, head.frames) == (12000, 12000, 1)
    with pytest.raises(memory.NotEnoughMemory, match="big.png: decoding 12000x12000: needs about 1.1 GiB"):
        memory.check_image(png, available=1 << 30)
    # the peak, in a fresh process (a pytest worker's own high-water mark would hide a decode): no 144 MB
    code = ("import sys\nfrom zoo import memory\nhwm = lambda: int([x for x in open('/proc/self/status') "
            "if x.startswith('VmHWM')][0].split()[1])\nbefore = hwm()\nmemory.image_header(sys.argv[1])\n"
            "print(hwm() - before)")
    grew = subprocess.run([sys.executable, "-c", code, str(png)], capture_output=True, text=True, timeout=60)
    assert grew.returncode == 0 and int(grew.stdout) < 20 << 10, (grew.stdout, grew.stderr[-500:])  # KiB


@pytest.mark.parametrize("command", [["classify", *BRAIN], ["dream", *BRAIN, "--iterations", "1", "--octaves", "1"]])
def test_a_12000_square_png_is_refused_before_decoding(tmp_path: Path, env: dict, command: list[str]) -> None:
    png = png_declaring(tmp_path / "big.png", 12000, 12000)
    r, peak = run_limited([*command, str(png), "-o", str(tmp_path / "out.png")][: None if "dream" in command else -2],
                          env)
    assert r.returncode == 1, r.stderr[-2000:]
    lines = errors(r)  # one image: its error is the one line (no "1 of 1 images" count line)
    assert len(lines) == 1 and "big.png" in lines[0] and "memory" in lines[0] and "Traceback" not in r.stderr
    assert 0 < peak < PEAK, peak  # the 144 M pixels were never decoded (2.3 GB as float)
    assert not (tmp_path / "out.png").exists()


def test_a_gif_decompression_bomb_is_one_line(tmp_path: Path, env: dict) -> None:
    gif = gif_bomb(tmp_path / "bomb.gif")
    assert gif.stat().st_size < 100
    r, peak = run_limited(["classify", *BRAIN, str(gif)], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = errors(r)
    assert len(lines) == 1 and "bomb.gif" in lines[0]
    assert 0 < peak < PEAK, peak


@pytest.mark.parametrize("command", [["dream", "--recipe"], ["info"]])
def test_a_png_declaring_ten_billion_pixels_as_a_recipe_is_one_line(tmp_path: Path, command: list[str]) -> None:
    """A header that lies (IHDR 100000x100000, a few bytes of data): the readers of records (a clip's
    frame, a sound's picture, a still's recipe) each open it; PIL's bomb check raised past them."""
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    png = tmp_path / "liar.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
                    + _chunk(b"IEND", b""))
    r = subprocess.run([sys.executable, "-m", "zoo.cli", *command, str(png), *(["-o", str(tmp_path / "x.png")]
                        if "dream" in command else [])], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "ZOO_HOME": str(tmp_path / "home")})
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines() == [f"error: {png}: declares more than 400 million pixels (at most "
                                             "20000x20000 are read)"]


def test_select_frames_of_two_billion_is_refused_not_listed(tmp_path: Path) -> None:
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
            "from fractions import Fraction\n"
            "from zoo.dream.video import select_frames\n"
            "from zoo.errors import UserError\n"
            "try:\n    select_frames(2_000_000_000, Fraction(10))\nexcept UserError as e:\n    print('REFUSED', e)\n"
            "print(select_frames(2_000_000_000, Fraction(10), 5, 9)[0])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "MemoryError" not in r.stderr, r.stderr[-2000:]
    assert "REFUSED" in r.stdout and "2000000000 frames" in r.stdout and "[5, 6, 7, 8]" in r.stdout


def test_an_mp4_declaring_two_billion_frames_is_one_line(tmp_path: Path, env: dict) -> None:
    clip = mp4_declaring(tmp_path / "liar.mp4", 2_000_000_000)
    assert clip.stat().st_size < 12 << 10
    r, peak = run_limited(["dream", *BRAIN, str(clip), "-o", str(tmp_path / "out.mp4"), "--iterations", "1"], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = errors(r)
    assert len(lines) == 1 and "liar.mp4" in lines[0] and "frames" in lines[0]
    assert 0 < peak < PEAK, peak
    assert not list(tmp_path.glob("out*"))


def test_a_clip_at_20000_square_is_refused_before_dreaming(tmp_path: Path, env: dict) -> None:
    clip = mp4_declaring(tmp_path / "small.mp4", 5)
    r, peak = run_limited(["dream", *BRAIN, str(clip), "--size", "20000x20000", "-o", str(tmp_path / "out.mp4")],
                          {**env, "ZOO_MEMORY_LIMIT": "4G"}, limit_gib=6)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = errors(r)
    assert len(lines) == 1 and "20000x20000" in lines[0] and "memory" in lines[0], lines
    assert 0 < peak < PEAK, peak


def test_a_channel_batch_too_large_for_memory_is_refused_before_the_first_pass(tmp_path: Path, env: dict) -> None:
    """512 rows of block7 at 256 px would hold about 85 GB of activations: refused in one line with a
    batch that fits, before any pass (under a 4 GiB address limit a pass would die of MemoryError)."""
    out = tmp_path / "atlas"
    r, peak = run_limited(["atlas", *BRAIN, "--channels", "block7/output", "--batch", "512", "--size", "256",
                           "-o", str(out)], env)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    lines = errors(r)
    assert len(lines) == 1 and "--batch 512" in lines[0] and "memory" in lines[0], lines
    room = int(lines[0].rsplit("try --batch ", 1)[1])
    assert 1 <= room < 64, lines  # 1 GiB holds a few rows (each about 170 MB by pipeline's own estimate)
    assert 0 < peak < PEAK, peak
    assert not list(out.rglob("*.png")) and not list((env_home := Path(env["ZOO_HOME"])).rglob("ch*.png")), env_home


def test_check_image_refuses_a_callers_cap(tmp_path: Path) -> None:
    png = png_declaring(tmp_path / "wide.png", 5000, 10)
    with pytest.raises(UserError, match="wide.png: 5000x10 is larger than the 0 million pixels read here"):
        memory.check_image(png, max_pixels=40_000)
    assert memory.check_image(png).pixels == 50_000


# --- the studio's web server reads an upload's header, never its pixels --------------------------------

STUDIO_UPLOAD = """
import resource, sys
from fastapi.testclient import TestClient
from zoo.studio.app import Settings, create_app
app = create_app(Settings(start_worker=False, warm=False))
body = open(sys.argv[1], "rb").read()
with TestClient(app, base_url="http://127.0.0.1:7860") as c:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = c.post("/api/uploads?kind=image&filename=big.png", content=body)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(r.status_code, grew * 1024, r.json().get("error") or (r.json()["width"], r.json()["height"]))
"""


@pytest.mark.parametrize(("limit", "status"), [("64G", 200), ("1G", 400)])
def test_the_studio_never_decodes_a_large_upload_in_the_web_server(tmp_path: Path, limit: str, status: int) -> None:
    pytest.importorskip("fastapi")
    png = png_declaring(tmp_path / "big.png", 12000, 12000)
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "home"), "ZOO_MEMORY_LIMIT": limit}
    r = subprocess.run([sys.executable, "-c", STUDIO_UPLOAD, str(png)], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    code, grew, what = r.stdout.split(" ", 2)
    assert int(code) == status and int(grew) < 200 << 20, r.stdout  # a decode would be 2.3 GB (0.14 GB at least)
    if status == 200:
        assert what.strip() == "(12000, 12000)"
    else:
        assert "big.png" in what and "memory" in what and "\n" not in what.strip()
