"""Every option of a dream, declared once: `zoo dream`'s typer options, the studio's DreamRequest and a
recipe's field checks are all generated from these (zoo.options says how).

To add an option: one `Option(...)` line below (in DREAM, or PARAMS when the render loop reads it from
DreamParams, whose field then holds its default). See docs/options.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from zoo.dream.presets import PARAM_KINDS, PRESETS, TRANSFORM_SETS, DreamParams

from zoo.options import Group, Option
from zoo.seeds import SEED_MAX

MAX_SIDE = 20_000  # a side beyond this is refused outright; memory is checked before dreaming
OUT_TYPES = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
_P = DreamParams()


def pixel_size(v: object) -> str | None:
    """A size in pixels, W or WxH (what a recipe stores)."""
    if not re.fullmatch(r"\d{1,6}(x\d{1,6})?", str(v).strip().lower()):
        return f"must be W or WxH in pixels, not {json.dumps(str(v))}"
    if any(int(p) < 1 or int(p) > MAX_SIDE for p in str(v).strip().lower().split("x")):
        return f"{json.dumps(str(v))} is out of range (1 to {MAX_SIDE} pixels a side)"
    return None


def one_of(choices: tuple[str, ...], v: object) -> str | None:
    """A closed choice worded as `choices=` words it, for an option whose choices --help lists in words."""
    return None if v in choices else f"must be one of {', '.join(choices)}, not {json.dumps(str(v))}"


def _size(v: object) -> str | None:
    """W or WxH in pixels, or a print size W[xH]UNIT@DPI (stored in a recipe as its pixels)."""
    from zoo.dream import geometry

    try:
        pixels, _ = geometry.print_size(str(v))
    except ValueError as e:
        return str(e)
    return pixel_size(pixels)


# What the render loop reads (DreamParams): a recipe keeps them under "params".
PARAMS = Group((
    Option("octaves", int, _P.octaves, "how many scales the image is dreamt at", lo=1, hi=32),
    Option("octave_scale", float, _P.octave_scale, "size ratio between octaves", lo=1.0, hi=4.0, above=True),
    Option("iterations", int, _P.iterations, "ascent steps per octave", lo=1, hi=100_000),
    Option("step", float, _P.step, "ascent step in pixel units", lo=0.0, hi=1000.0),
    Option("jitter", int, _P.jitter, "random shift per step, in pixels", lo=0, hi=10_000),
    Option("tile", int, None, "tile side; images up to 8/7 of it run whole; default: from free memory",
           lo=16, hi=1 << 16),
))

# The legible look (zoo.dream.robust; docs/legible.md): --look picks it, the rest change its loop.
LEGIBLE = Group((
    Option("look", str, "auto", "auto: class targets (prob:goldfish) legible, the rest classic DeepDream (see "
           "docs/legible.md)", choices=("auto", "classic", "legible"), metavar="LOOK"),
    Option("param", str, None, "legible: how the picture is held (default fft)", choices=tuple(PARAM_KINDS),
           metavar="KIND"),
    # the sets in words (--help's column); zoo.dream.legible.class_transforms picks a class's
    Option("transforms", str, None, "legible: the random transforms each step: zoom, crops (classes from a photo, "
           "from noise), standard, light or none", rule=lambda v: one_of(TRANSFORM_SETS, v), metavar="SET"),
    Option("rgb", bool, False, "legible: optimise plain RGB, not the training data's decorrelated colours"),
    Option("diversity", int, None, "legible: N different pictures side by side", lo=1, hi=64),
))

# Sounds (dream/audio_run.py's SoundOptions checks them again, with the --hop/--overlap rules between them).
# The choices are audio_run.STEREO, spectrogram.FREQ_SCALES and phase.PHASES (tests hold them equal): named
# here, so this module does not import the sound modules.
SOUND = Group((
    Option("n_fft", int, 1024, "sound: STFT window in samples", lo=32, hi=16384),
    Option("hop", int, 512, "sound: STFT hop in samples", lo=1, hi=8192),
    Option("freq_scale", str, "linear", "sound: picture rows", choices=("linear", "mel")),
    Option("phase", str, "original", "sound: original or griffinlim (rebuilt)",
           rule=lambda v: one_of(("original", "griffinlim"), v), metavar="PHASE"),
    Option("gl_iterations", int, 32, "sound: fast Griffin-Lim iterations", lo=1, hi=1000),
    Option("mix", float, 1.0, "sound: dry 0 .. wet 1", lo=0.0, hi=1.0),
    Option("stereo", str, "channels", "sound: channels or midside", rule=lambda v: one_of(("channels", "midside"), v),
           metavar="STEREO"),
    Option("chunk", float, 10.0, "sound: seconds per chunk", lo=0.1, hi=3600.0),
    Option("no_loudness", bool, False, "sound: let the level follow the dream (default: keep the input's RMS and "
           "peak)"),  # not --loudness/--no-loudness: that pair widens --help's name column past 80
    Option("rounds", int, 1, "sound: dream, resynthesise, dream again (features that survive resynthesis)", lo=1,
           hi=100),
    Option("picture_scale", float, 0.5, "sound: dream the spectrogram at this fraction of its size (the change is "
           "scaled back up; 1: full size, 4x the work)", lo=0.05, hi=1.0),
))

# Stroke dreams (an SVG) and journeys through the layers (dream/vector_cli.py).
VECTOR = Group((
    Option("strokes", int, None, "paint the dream in N Bézier strokes and write an SVG (-o X.svg; default 400 for an "
           ".svg output; --iterations steps, default 200)", lo=1, hi=20_000),
    Option("underlay", bool, False, "strokes: paint over the photo, not its mean colour"),
    Option("layer_path", str, None, "a journey: cross-fade the objective along BLOB,BLOB,... (or all: shallow to "
           "deep) over --frames of zoom; -o a video, .gif/.webp or folder; --fps its rate (default 24)",
           max_len=4096, metavar="BLOBS"),
    Option("hold", float, None, "a journey: the share of its frames that rests on the blobs themselves, the rest "
           "fading between them (default 0.4; 0: always fading)", lo=0.0, hi=0.95),
))

# The dream itself (a recipe's top-level fields) and how `zoo dream` runs it.
DREAM = Group((
    Option("output", Path, None, "file (.png .jpg .webp .tif; .gif/.webp with --frames) or, for several inputs, a "
           "folder", flags=("-o", "--output")),
    Option("model", str, None, "a zoo model name (see `zoo list`)", max_len=200, flags=("--model", "-m")),
    Option("layers", str, (), "BLOB, BLOB:CH[,CH..], BLOB:LABEL (see `zoo labels`) or BLOB:CH@Y,X (Y,X in the blob "
           "at the final size, see `zoo layers MODEL --size`); repeatable", many=True, max_len=500,
           flags=("--layer", "-l"), metavar="BLOB"),
    Option("weights", float, (), "one per --layer, default 1", many=True, lo=-1e6, hi=1e6, flags=("--weight", "-w")),
    Option("guide", Path, None, "steer toward this image's features"),
    Option("init", str, "image", "image | noise[:SPREAD] | gradient[:DEG] | color[:#RRGGBB]", max_len=200),
    *PARAMS,
    Option("size", str, None, "W or WxH: scale the input first; or a print size, W[xH]UNIT@DPI, e.g. 18x18in@300 "
           "(UNIT in, cm, mm)", rule=_size, metavar="W[xH]"),
    Option("dpi", int, None, "print resolution written into the file (PNG, TIFF, JPEG), so it opens at its print "
           "size", lo=1, hi=100_000),
    Option("frames", int, 1, "zoom/rotate feedback frames", lo=1, hi=100_000),
    Option("zoom", float, 1.05, "zoom per frame", lo=0.1, hi=10.0),
    Option("rotate", float, 0.0, "degrees per frame", lo=-360.0, hi=360.0),
    Option("seed", int, 0, "seed of the noise, jitter and any random start", lo=0, hi=SEED_MAX),
    Option("preset", str, None, "named parameter set", choices=tuple(PRESETS)),
    Option("device", str, None, "default: cuda if present", choices=("cpu", "cuda")),
    Option("format", str, None, "output type for folders (default png)", choices=tuple(OUT_TYPES)),
    Option("quality", int, 92, "JPEG/WebP quality", lo=1, hi=100),
    Option("recipe", Path, None, "reproduce the dream stored in this image"),
    Option("blend", float, 0.8, "clips: share of the last frame's detail carried along the flow", lo=0.0, hi=1.0),
    Option("flow", str, "dis", "clips: optical flow", choices=("dis", "farneback")),
    Option("no_flow", bool, False, "clips: dream frames independently"),
    Option("frame_iterations", int, None, "clips: steps after frame 1 (default: a third)", lo=1, hi=100_000),
    Option("start_frame", int, 0, "clips: first source frame", lo=0, hi=10**9),
    Option("end_frame", int, None, "clips: stop before this frame", lo=1, hi=10**9),
    Option("fps", float, None, "clips: subsample to this rate", lo=0.01, hi=1000.0),
    Option("crf", int, 18, "clips: encoder quality, lower is better", lo=0, hi=63),
    Option("codec", str, None, "clips: libx264, libvpx-vp9, ...", max_len=50),
    Option("chunks", bool, False, "clips under torchrun: one part per rank"),
    Option("warmup", int, 4, "clips with --chunks: frames dreamt before a part", lo=0, hi=10_000),
    Option("audio", str, "copy", "clips: the soundtrack", choices=("copy", "dream")),
    *SOUND,
    Option("nproc", int, None, "processes through torchrun", lo=1, hi=1024),
    Option("compile", bool, False, "run the net through torch.compile (opt-in; the first run per size compiles for "
           "a minute or more, later runs load it from $ZOO_HOME/cache/compile)"),
    *LEGIBLE,
    *VECTOR,
))

# `zoo atlas` (and the studio's atlas form): the same start through every dreamable blob.
ATLAS = Group((
    Option("model", str, None, "a zoo model name", max_len=200, flags=("--model", "-m"), required=True),
    Option("blobs", str, (), "repeatable; default: every dreamable blob", many=True, max_len=500,
           flags=("--blobs", "-b"), metavar="BLOB"),
    Option("start", str, "noise", "noise | gradient | color[:#RRGGBB] | an image file", max_len=4096),
    Option("output", Path, None, "folder (default: atlas-MODEL)", flags=("-o", "--output")),
    Option("size", int, None, "side of each picture (default 256; with --channels 128)", lo=16, hi=4096),
    replace(PARAMS["octaves"], default=3),
    replace(PARAMS["iterations"], default=None, help="steps per octave (default 10); with --channels, legible steps "
            "(default 64)"),
    PARAMS["step"],
    DREAM["seed"],
    Option("columns", int, None, "pictures per row of the sheet (default: about square)", lo=1, hi=1000),
    DREAM["device"],
    Option("channels", str, (), "BLOB (repeatable) or all: every channel's picture, grown from noise with the "
           "legible look, cached in $ZOO_HOME/atlas; a page per blob", many=True, max_len=500, metavar="BLOB"),
    Option("batch", int, 16, "with --channels: channels per forward pass", lo=1, hi=512),
))

# The studio's start image: a studio file or a path in a --folder (the CLI takes INPUT... instead).
INPUT = Option("input", Path, None, "start image: a studio file (uploads/… or outputs/…) or an absolute path in a "
               "folder named with --folder", max_len=4096)

# What a recipe stores of DREAM (its other fields are checksums and bookkeeping).
RECIPE_FIELDS = ("model", "layers", "weights", "init", "size", "frames", "zoom", "rotate", "seed", "preset", "device",
                 "dpi", "look")
# What the studio's Dream form sends.
STUDIO_FIELDS = ("init", "model", "layers", "weights", "guide", *(o.name for o in PARAMS), "size", "seed", "preset",
                 "device")
# What it sends besides for a sound, a stroke dream or a journey (zoo/studio/routes/media.py picks the job).
STUDIO_MEDIA_FIELDS = (*(o.name for o in SOUND), *(o.name for o in VECTOR), "frames", "zoom", "fps")
