"""Video in, video out: decode a clip, dream it frame by frame with flow-carried detail, encode it back.

Sources are a video file (PyAV), a folder of numbered frames, or an animated GIF/WebP; outputs the
same. Frames are dreamt in order and written as numbered PNGs (each with the recipe) the moment
they are finished, into `<output stem>-frames/` (or the output folder itself), beside a `run.json`
holding the recipe of the whole run; a rerun of the same command skips finished frames, picks the
chain up from the last written PNG and ends with the same frames as an uninterrupted run. The
carried state between frames is the written 8-bit frame, in both cases, so resuming is exact.
The container is encoded from the PNGs at the end, keeping the frame rate and copying the audio.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageSequence, PngImagePlugin
from zoo.dream.output import to_uint8
from zoo.dream.recipe import Recipe, png_info

from zoo import formats, memory
from zoo.errors import UserError
from zoo.io import atomic_path, regular_file, write_text_atomic
from zoo.memory import DECODE_BYTES_PER_PIXEL, MAX_FRAMES, check_fits, check_image

if TYPE_CHECKING:  # torch.distributed only where frames are shared among ranks: the studio's web server reads
    from zoo.dream import distributed  # records through this module and must not load torch

VIDEO_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
ANIMATION_SUFFIXES = (".gif", ".webp")
IMAGE_SUFFIXES = formats.IMAGES
DEFAULT_CODECS = {".webm": "libvpx-vp9", ".avi": "mpeg4"}  # everything else: libx264
CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1")
VIDEO_KEY = "zoo:video"
FOLDER_FPS = 24.0  # frame rate of a folder of frames (it has none of its own)
BLEND = 0.8  # share of the previous frame's detail carried over (tuned on the test clip, see README)


def _av():
    try:
        import av
    except ImportError:
        raise UserError("video needs PyAV: pip install 'zoo[video]'") from None
    return av


# --- options and recipe ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoOptions:
    """Everything about a clip dream besides the per-frame Recipe (brain, layers, octaves, seed)."""

    blend: float = BLEND
    flow: str = "dis"  # dis | farneback | none
    frame_iterations: int | None = None  # steps on frames after the first (None: a third of --iterations)
    start_frame: int = 0
    end_frame: int | None = None  # exclusive, in source frames
    fps: float | None = None  # subsample to this rate (or the rate of a folder of frames)
    crf: int = 18
    codec: str | None = None
    chunks: bool = False
    warmup: int = 4  # frames each chunk dreams before its start, unwritten
    audio: str = "copy"  # the soundtrack: copy (remuxed as it is) or dream (zoo.dream.audio_run)

    def later_iterations(self, iterations: int) -> int:
        if self.flow == "none":
            return iterations
        return self.frame_iterations or max(1, iterations // 3)


@dataclass(frozen=True)
class ClipJob:
    """One clip dream: the per-frame recipe, the video options, and what was read from the source."""

    recipe: Recipe
    options: VideoOptions
    source: str
    frames: tuple[int, ...]  # source frame numbers kept, in order
    fps: Fraction
    size: tuple[int, int]  # (height, width) of the dreamt frames
    world: int = 1  # ranks of a chunked run (chunk bounds depend on it)

    def to_json(self) -> str:
        options = asdict(self.options)
        if options["audio"] == "copy":  # records of clips with a copied soundtrack stay what they were
            del options["audio"]
        return json.dumps({"recipe": json.loads(self.recipe.to_json()), "video": options,
                           "source": self.source, "frames": list(self.frames), "fps": str(self.fps),
                           "size": list(self.size), "world": self.world if self.options.chunks else 1},
                          sort_keys=True)


# --- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """A readable source: its kind, frame rate, frame count and size (height, width)."""

    path: Path
    kind: str  # video | folder | animation
    fps: Fraction
    count: int
    size: tuple[int, int]
    has_audio: bool = False


def is_clip_path(path: Path | None) -> bool:
    """Whether a path names a clip rather than a still: a video file, a folder, an animated GIF/WebP."""
    if path is None:
        return False
    if path.is_dir() or path.suffix.lower() in VIDEO_SUFFIXES:
        return True
    if path.suffix.lower() in ANIMATION_SUFFIXES and path.is_file():
        try:
            with Image.open(path) as im:
                return getattr(im, "n_frames", 1) > 1
        except memory.DECODE_ERRORS:
            return False  # not a readable animation: the still reader says why in one line
    return False


def numbered_frames(folder: Path) -> list[Path]:
    """The images of a folder in the order of the (last) number in their names."""
    def key(p: Path) -> tuple[int, str]:
        nums = re.findall(r"\d+", p.stem)
        return (int(nums[-1]) if nums else -1, p.name)

    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not p.name.startswith(".")]
    return sorted(files, key=key)


def open_clip(path: Path, folder_fps: float | None = None) -> Clip:
    """Probe a source clip (one line, naming the file, if it cannot be read)."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        files = numbered_frames(path)
        if not files:
            raise UserError(f"{path}: holds no numbered image frames")
        head = check_image(files[0])  # every frame must match the first (read_frames checks)
        w, h = head.width, head.height
        return Clip(path, "folder", Fraction(folder_fps or FOLDER_FPS).limit_denominator(1001), len(files), (h, w))
    if path.suffix.lower() in ANIMATION_SUFFIXES:
        check_image(path)  # one frame at a time is decoded; a 20000x20000 screen is a bomb
        try:
            with Image.open(path) as im:
                n = getattr(im, "n_frames", 1)
                durations = [f.info.get("duration", 100) or 100 for f in ImageSequence.Iterator(im)]
                w, h = im.size
        except memory.DECODE_ERRORS as e:
            raise UserError(f"{path}: cannot decode as an animation ({type(e).__name__})") from None
        fps = Fraction(1000 * len(durations), max(1, sum(durations))).limit_denominator(1001)
        return Clip(path, "animation", fps, n, (h, w))
    regular_file(path)  # a FIFO would block, a device read without end
    av = _av()
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise UserError(f"{path}: has no video stream")
            s = c.streams.video[0]
            check_fits(f"{path}: decoding {s.width}x{s.height} frames", s.width * s.height * DECODE_BYTES_PER_PIXEL)
            fps = s.average_rate or s.guessed_rate or Fraction(FOLDER_FPS)
            count = s.frames or sum(1 for p in c.demux(s) if p.size)
            return Clip(path, "video", Fraction(fps), count, (s.height, s.width), bool(c.streams.audio))
    except av.FFmpegError as e:
        raise UserError(f"{path}: cannot decode as a video ({type(e).__name__})") from None


def read_frames(clip: Clip) -> Iterator[np.ndarray]:
    """Every frame of the clip in order, as HxWx3 uint8 RGB."""
    if clip.kind == "folder":
        for p in numbered_frames(clip.path):
            try:
                with Image.open(p) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except memory.DECODE_ERRORS:
                raise UserError(f"{p}: cannot decode as an image") from None
            if rgb.shape[:2] != clip.size:
                raise UserError(f"{p}: is {rgb.shape[1]}x{rgb.shape[0]}, the first frame {clip.size[1]}x{clip.size[0]}")
            yield rgb
    elif clip.kind == "animation":
        with Image.open(clip.path) as im:
            for f in ImageSequence.Iterator(im):
                yield np.asarray(f.convert("RGB"))
    else:
        av = _av()
        with av.open(str(clip.path)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            for f in c.decode(s):
                yield f.to_ndarray(format="rgb24")


def select_frames(count: int, src_fps: Fraction, start: int = 0, end: int | None = None,
                  fps: float | None = None) -> tuple[list[int], Fraction]:
    """Source frame numbers kept by --start-frame/--end-frame (exclusive) and --fps, and the output rate.

    Subsampling keeps the first source frame at or after each tick of the new rate.
    """
    end = count if end is None else min(end, count)
    if start < 0 or start >= end:
        raise UserError(f"--start-frame {start} / --end-frame {end}: no frames selected (the clip has {count})")
    if end - start > MAX_FRAMES:  # a header's count is hostile: never build a list that long
        raise UserError(f"declares {count} frames; at most {MAX_FRAMES} are dreamt in one run "
                        "(choose a span with --start-frame/--end-frame)")
    if fps is None or Fraction(fps).limit_denominator(1001) >= src_fps:
        return list(range(start, end)), src_fps
    rate = Fraction(fps).limit_denominator(1001)
    kept, tick = [], 0
    for i in range(start, end):
        if (i - start) >= tick * src_fps / rate - 1e-9:
            kept.append(i)
            tick += 1
    return kept, rate


# --- frames on disk -------------------------------------------------------------------------------


def frames_folder(output: Path) -> Path:
    """Where the numbered PNGs go: the output itself when it is a folder, else `<stem>-frames/` beside it."""
    if output.suffix.lower() in VIDEO_SUFFIXES or output.suffix.lower() in ANIMATION_SUFFIXES:
        return output.with_name(f"{output.stem}-frames")
    return output


def check_output(target: Path, what: str = "clip") -> None:
    """A clip's (or a journey's) output: a video, an animation or a folder, whose frames folder can
    be made. One line naming the problem."""
    folder = frames_folder(target)
    parent = folder.parent if str(folder.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{target}: cannot write, folder {parent} does not exist")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    suffix = target.suffix.lower()
    if suffix and suffix not in VIDEO_SUFFIXES and suffix not in ANIMATION_SUFFIXES and not target.is_dir():
        kinds = ", ".join([*VIDEO_SUFFIXES, *ANIMATION_SUFFIXES, "a folder"])
        raise UserError(f"{target}: unsupported {what} output; use one of {kinds}")


def frame_path(folder: Path, k: int) -> Path:
    return folder / f"frame-{k + 1:05d}.png"


def prepare_folder(folder: Path, job: ClipJob, master: bool, say: Callable[[str], None]) -> None:
    """Create the frames folder with its run file; another run's frames there are removed first."""
    run = folder / "run.json"
    if master:
        folder.mkdir(parents=False, exist_ok=True)
        text = job.to_json()
        if run.exists() and run.read_text(encoding="utf-8") != text:
            old = [p for p in folder.glob("frame-*.png")]
            say(f"{folder}: holds frames of another run; starting over ({len(old)} frames removed)")
            for p in old:
                p.unlink()
        if not run.exists() or run.read_text(encoding="utf-8") != text:
            write_text_atomic(run, text)
    from zoo.dream import distributed

    distributed.barrier()


def earlier_tile(folder: Path, job: ClipJob) -> int | None:
    """The tile of an earlier run in this folder that differs from `job` in nothing else (else None)."""
    run = folder / "run.json"
    if not run.is_file():
        return None
    try:
        old = json.loads(run.read_text(encoding="utf-8"))
        tile = int(old["recipe"]["params"]["tile"])
    except (ValueError, KeyError, TypeError, OSError):
        return None
    again = ClipJob(job.recipe.with_(params=job.recipe.params.with_(tile=tile)), job.options, job.source, job.frames,
                    job.fps, job.size, job.world)
    return tile if json.loads(again.to_json()) == old else None


def frame_info(job: ClipJob, k: int) -> PngImagePlugin.PngInfo:
    info = png_info(job.recipe.with_(seed=job.recipe.seed + k))
    info.add_itxt(VIDEO_KEY, job.to_json())
    return info


def load_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# --- dreaming -------------------------------------------------------------------------------------


@dataclass
class ClipResult:
    written: int  # frames this process wrote
    skipped: int  # frames already there (resumed)
    interrupted: bool


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from zoo.dream.starts import resize_rgb

    return resize_rgb(rgb.astype(np.float32), size) if rgb.shape[:2] != size else rgb.astype(np.float32)


def my_range(job: ClipJob, ranks: distributed.Ranks) -> tuple[int, int, int]:
    """(first frame to write, stop, first frame of the chain) for this rank: all frames in tile mode,
    one contiguous chunk warmed up on `warmup` frames before it in chunk mode."""
    from zoo.dream import distributed

    n = len(job.frames)
    if not job.options.chunks or ranks.world <= 1:
        return 0, n, 0
    a, b = distributed.chunk_bounds(n, ranks.world)[ranks.rank]
    warm = 0 if job.options.flow == "none" else job.options.warmup
    return a, b, max(0, a - warm)


def dream_clip(
    job: ClipJob,
    clip: Clip,
    folder: Path,
    dream_frame: Callable[[np.ndarray, int, bool], tuple[np.ndarray, Any]],
    *,
    on_frame: Callable[[int, int, str], None] | None = None,
) -> ClipResult:
    """Dream the job's frames in order, writing each finished frame; finished frames are skipped.

    `dream_frame(start_rgb, k, first)` dreams frame k from its start image (`first`: the chain's first
    frame, full iterations) and returns the RGB result and what ran (its `interrupted` is read). In
    tile mode rank 0 decides what is done and every rank follows it.
    """
    from zoo.dream import distributed

    ranks = distributed.current()
    a, b, chain = my_range(job, ranks)
    writer = ranks.master or job.options.chunks
    opts = job.options
    selected = {f: k for k, f in enumerate(job.frames)}
    prev_src: np.ndarray | None = None
    prev_out: np.ndarray | None = None
    prev_path: Path | None = None  # a finished frame not yet loaded (loaded only if the next one needs it)
    written = skipped = 0
    for i, raw in enumerate(read_frames(clip)):
        k = selected.get(i)
        if k is None or k < chain:
            continue
        if k >= b:
            break
        src = _resize(raw, job.size)
        path = frame_path(folder, k)
        done = k >= a and (path.exists() if writer else False)
        if not job.options.chunks:
            done = bool(distributed.broadcast_int(int(done)))
        if done:
            prev_src, prev_out, prev_path = src, None, path
            skipped += 1
            continue
        if prev_path is not None:
            prev_out = _shared_frame(prev_path, job, writer)
            prev_path = None
        start, first = _frame_start(src, prev_src, prev_out, opts)
        if on_frame is not None:
            on_frame(k, len(job.frames), "warm-up" if k < a else "")
        rgb, result = dream_frame(start, k, first)
        if result.interrupted:
            return ClipResult(written, skipped, True)
        out8 = to_uint8(rgb)
        if k >= a and writer:
            from zoo.dream.output import write_image

            write_image(path, out8, frame_info(job, k))
            written += 1
        prev_src, prev_out = src, out8.astype(np.float32)
    return ClipResult(written, skipped, False)


def _frame_start(src: np.ndarray, prev_src: np.ndarray | None, prev_out: np.ndarray | None,
                 opts: VideoOptions) -> tuple[np.ndarray, bool]:
    """Where a frame's dream starts, and whether it is a chain's first (full iterations): the plain
    frame (first, or --no-flow), else the frame plus the last dream's detail carried along the flow."""
    if prev_out is None or prev_src is None or opts.flow == "none":
        return src, True
    flow = _flow_module()
    back = flow.flow(src, prev_src, opts.flow)
    fwd = flow.flow(prev_src, src, opts.flow)
    return flow.carry(src, prev_src, prev_out, back, fwd, opts.blend), False


def _shared_frame(path: Path, job: ClipJob, writer: bool) -> np.ndarray:
    """A finished frame read back by the writer; in tile mode sent from rank 0 to the other ranks."""
    from zoo.dream import distributed

    rgb = load_png(path).astype(np.float32) if writer else np.zeros((*job.size, 3), np.float32)
    return rgb if job.options.chunks else distributed.broadcast_array(rgb)


def _flow_module():
    try:
        from zoo.dream import flow
    except ImportError:
        raise UserError("optical flow needs OpenCV: pip install 'zoo[video]' (or use --no-flow)") from None
    return flow


# --- writing --------------------------------------------------------------------------------------


def finished_frames(folder: Path, n: int) -> Iterator[np.ndarray]:
    for k in range(n):
        path = frame_path(folder, k)
        if not path.exists():
            raise UserError(f"{path}: missing (the run did not finish)")
        yield load_png(path)


def codec_for(path: Path, codec: str | None) -> str:
    return codec or DEFAULT_CODECS.get(path.suffix.lower(), "libx264")


def write_video(path: Path, frames: Iterator[np.ndarray], fps: Fraction, size: tuple[int, int], *,
                codec: str | None = None, crf: int = 18, audio: Clip | None = None,
                span: tuple[float, float] | None = None, comment: str = "") -> Path:
    """Encode RGB frames at `fps` (atomically) and copy the audio of `audio` within `span` seconds."""
    av = _av()
    codec = codec_for(path, codec)
    if codec not in av.codecs_available:
        raise UserError(f"{path}: codec {codec!r} is not available in this PyAV build")
    h, w = size
    fmt = VIDEO_SUFFIXES[path.suffix.lower()]
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as out:
        if comment:
            out.metadata["comment"] = comment
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height = w, h
        even = w % 2 == 0 and h % 2 == 0
        vs.pix_fmt = "yuv420p" if (even or codec not in ("libx264", "libx265")) else "yuv444p"
        opts = {"crf": str(crf)} if codec in CRF_CODECS else {"qscale": str(max(1, min(31, crf // 2)))}
        if codec == "libvpx-vp9":
            opts["b"] = "0"
        if codec == "libx264":  # x264's macroblock-tree lookahead is not deterministic: same frames, same file
            opts["x264-params"] = "mbtree=0:rc-lookahead=0"
        vs.options = opts
        src = av.open(str(audio.path)) if audio is not None and audio.has_audio else None
        try:
            a_in = src.streams.audio[0] if src is not None else None
            a_out = out.add_stream_from_template(a_in) if a_in is not None else None
            for i, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = i
                for packet in vs.encode(frame):
                    out.mux(packet)
            for packet in vs.encode():
                out.mux(packet)
            if a_in is not None and a_out is not None:
                _copy_audio(src, a_in, a_out, out, span)
        except av.FFmpegError as e:
            raise UserError(f"{path}: cannot encode ({e})") from None
        finally:
            if src is not None:
                src.close()
    return path


def _copy_audio(src, a_in, a_out, out, span: tuple[float, float] | None) -> None:
    """Remux the audio packets (no re-encoding) whose start lies in `span`, shifted to start at 0."""
    tb = a_in.time_base
    shift = 0
    if span is not None:
        shift = int(round(span[0] / tb))
    for packet in src.demux(a_in):
        if packet.dts is None or packet.pts is None:
            continue
        t = float(packet.pts * tb)
        if span is not None and not (span[0] - 1e-6 <= t < span[1] - 1e-6):
            continue
        packet.pts -= shift
        packet.dts -= shift
        packet.stream = a_out
        out.mux(packet)


def write_output(target: Path, folder: Path, job: ClipJob, clip: Clip, soundtrack: Clip | None = None) -> None:
    """Assemble the finished PNGs into the target (nothing to do when the target is the folder), with the
    clip's audio copied, or `soundtrack` (a dreamt one, already cut to the frames) instead."""
    n = len(job.frames)
    if frames_folder(target) == target:
        return
    if target.suffix.lower() in ANIMATION_SUFFIXES:
        from zoo.dream.sequence import write_animation

        write_animation(target, list(finished_frames(folder, n)), float(job.fps))
        return
    span = None
    if clip.kind == "video" and (job.frames[0] != 0 or job.frames[-1] != clip.count - 1):
        span = (job.frames[0] / clip.fps, (job.frames[-1] + 1) / clip.fps)
        span = (float(span[0]), float(span[1]))
    if soundtrack is not None:
        clip, span = soundtrack, None
    write_video(target, finished_frames(folder, n), job.fps, job.size, codec=job.options.codec,
                crf=job.options.crf, audio=clip if clip.kind == "video" else None, span=span,
                comment=job.to_json())


def read_video_recipe(path: Path) -> str | None:
    """The run's JSON stored in a video's `comment` tag, a frame PNG or a run.json (None if absent).

    A folder means its run.json; an animated GIF/WebP, the run.json of the frames folder beside it."""
    if path.is_dir():
        path = path / "run.json"
    elif path.suffix.lower() in ANIMATION_SUFFIXES:
        path = frames_folder(path) / "run.json"
    if path.suffix == ".json":
        return path.read_text(encoding="utf-8") if path.is_file() else None
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() == ".png":
        try:
            with Image.open(path) as im:
                return getattr(im, "text", {}).get(VIDEO_KEY)
        except memory.DECODE_ERRORS:
            raise UserError(f"{path}: cannot decode as an image") from None
    av = _av()
    try:
        with av.open(str(path)) as c:
            return c.metadata.get("comment")
    except av.FFmpegError as e:
        raise UserError(f"{path}: cannot decode as a video ({type(e).__name__})") from None


def is_clip_recipe(path: Path) -> bool:
    """Whether `--recipe PATH` names a clip's run: a video file, a frames folder or its run.json, a
    clip's frame PNG, or a GIF/WebP with a clip's frames folder beside it."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES or path.name == "run.json":
        return True
    if path.is_dir():
        return (path / "run.json").is_file()
    if suffix in ANIMATION_SUFFIXES:
        return (frames_folder(path) / "run.json").is_file()
    if suffix == ".png" and path.is_file():
        try:
            with Image.open(path) as im:
                return VIDEO_KEY in getattr(im, "text", {})
        except memory.DECODE_ERRORS:
            return False
    return False


def _is_int(lo: int, none: bool = False, hi: int | None = None) -> Callable[[object], bool]:
    return lambda v: (v is None and none) or (isinstance(v, int) and not isinstance(v, bool) and v >= lo
                                              and (hi is None or v <= hi))


def _is_num(lo: float, hi: float, none: bool = False) -> Callable[[object], bool]:
    return lambda v: (v is None and none) or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                              and lo <= v <= hi)


_OPTION_CHECKS: dict[str, Callable[[object], bool]] = {
    "blend": _is_num(0.0, 1.0), "flow": lambda v: v in ("dis", "farneback", "none"),
    "frame_iterations": _is_int(1, none=True, hi=100_000), "start_frame": _is_int(0),
    "end_frame": _is_int(1, none=True),
    "fps": _is_num(0.01, 1e4, none=True), "crf": lambda v: _is_int(0)(v) and v <= 63,  # type: ignore[operator]
    "codec": lambda v: v is None or (isinstance(v, str) and len(v) < 64), "chunks": lambda v: isinstance(v, bool),
    "warmup": _is_int(0), "audio": lambda v: v in ("copy", "dream"),
}


def job_from_json(text: str | None, source: str) -> tuple[Recipe, VideoOptions, list[int]]:
    """The per-frame recipe, the video options and the frame list of a clip's run record, each field
    checked (a tampered record gets one line naming the field)."""
    if text is None:
        raise UserError(f"{source}: carries no zoo clip recipe (only clips written by `zoo dream` do)")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UserError(f"{source}: its clip recipe is not valid JSON") from None
    if not isinstance(data, dict) or not {"recipe", "video", "frames"} <= set(data):
        raise UserError(f"{source}: its clip recipe lacks recipe, video or frames")
    rec = Recipe.from_json(json.dumps(data["recipe"]), source)
    opts = data["video"]
    if isinstance(opts, dict):
        opts = {"audio": "copy", **opts}
    if not isinstance(opts, dict) or set(opts) != set(_OPTION_CHECKS):
        raise UserError(f"{source}: clip recipe field 'video' must hold {', '.join(_OPTION_CHECKS)}")
    for key, ok in _OPTION_CHECKS.items():
        if not ok(opts[key]):
            raise UserError(f"{source}: clip recipe field 'video.{key}' is not valid ({opts[key]!r})")
    frames = data["frames"]
    if not isinstance(frames, list) or not all(_is_int(0)(f) for f in frames):
        raise UserError(f"{source}: clip recipe field 'frames' must be a list of frame numbers")
    return rec, VideoOptions(**opts), frames
