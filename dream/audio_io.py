"""Sound files in and out through PyAV: probe (declared length checked against memory before any
decoding), decode to float samples, encode atomically with the dream's record in the `comment` tag.

PCM outputs (.wav, .flac) keep the sample rate, channel count and length exactly; .ogg/.opus
(Opus), .mp3 and .m4a (AAC) are encoded at a rate their codec accepts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from zoo.errors import UserError
from zoo.io import atomic_path

# suffix -> (container format, codec, codec rate or None to keep the input's, options)
AUDIO_FORMATS: dict[str, tuple[str, str, int | None, dict[str, str]]] = {
    ".wav": ("wav", "pcm_s16le", None, {}),
    ".flac": ("flac", "flac", None, {}),
    ".ogg": ("ogg", "libopus", 48000, {"b": "96000"}),
    ".opus": ("ogg", "libopus", 48000, {"b": "96000"}),
    ".mp3": ("mp3", "libmp3lame", None, {"b": "128000"}),
    ".m4a": ("ipod", "aac", None, {"b": "128000"}),
}
AUDIO_SUFFIXES = (*AUDIO_FORMATS, ".oga", ".aac", ".aif", ".aiff", ".wma")
BYTES_PER_SAMPLE = 24  # float32 input and output, the per-chunk STFTs and the encoder's copy, per sample
MAX_SECONDS = 6 * 3600.0  # a declared length above this is refused whatever memory is free
SLACK = 1.02  # decoded samples may exceed the declared length by this much (and one second)


def _av():
    try:
        import av
    except ImportError:
        raise UserError("sound needs PyAV: pip install 'zoo[video]'") from None
    return av


@dataclass(frozen=True)
class Track:
    """A readable sound: its rate, channels and declared length in samples (0: not declared)."""

    path: Path
    rate: int
    channels: int
    samples: int

    @property
    def seconds(self) -> float:
        return self.samples / self.rate


def is_audio_path(path: Path | None) -> bool:
    return path is not None and path.suffix.lower() in AUDIO_SUFFIXES


def check_memory(seconds: float, rate: int, channels: int, what: str) -> None:
    """Refuse, before decoding, a sound whose samples (and the dream's copies of them) do not fit
    (zoo.memory's one rule), or that declares more than MAX_SECONDS."""
    from zoo import memory

    if not np.isfinite(seconds) or seconds > MAX_SECONDS:
        raise UserError(f"{what}: declares {seconds / 3600:.1f} hours of sound; at most "
                        f"{MAX_SECONDS / 3600:g} hours are dreamt")
    memory.check_fits(what, int(seconds * rate * channels * BYTES_PER_SAMPLE),
                      hint=f"{seconds:.0f} s of {channels}-channel sound at {rate} Hz")


def probe(path: Path) -> Track:
    """Open a sound (or a video's first audio stream) and check its declared length against memory."""
    av = _av()
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with av.open(str(path)) as c:
            if not c.streams.audio:
                raise UserError(f"{path}: has no audio stream")
            s = c.streams.audio[0]
            rate, channels = int(s.rate or 0), int(s.channels or 0)
            if rate <= 0 or rate > 768_000 or channels <= 0 or channels > 32:
                raise UserError(f"{path}: declares {rate} Hz and {channels} channels; not a usable sound")
            if s.duration is not None and s.time_base is not None:
                seconds = float(s.duration * s.time_base)
            elif c.duration is not None:
                seconds = c.duration / 1_000_000
            else:
                seconds = 0.0
    except av.FFmpegError as e:
        raise UserError(f"{path}: cannot decode as sound ({type(e).__name__})") from None
    check_memory(seconds, rate, channels, str(path))
    return Track(path, rate, channels, int(round(seconds * rate)))


def read(track: Track, rate: int | None = None) -> np.ndarray:
    """Every sample of the track as float32 (channels x samples), at its own rate (or `rate`).

    A stream that runs past its declared length (or, with none declared, past what memory holds)
    is refused rather than followed."""
    av = _av()
    from zoo import memory

    rate = rate or track.rate
    declared = int(track.samples * rate / track.rate)
    free = memory.available_bytes() // (BYTES_PER_SAMPLE * track.channels)
    limit = int(declared * SLACK) + rate if declared else int(free)
    parts: list[np.ndarray] = []
    total = 0
    try:
        with av.open(str(track.path)) as c:
            s = c.streams.audio[0]
            layout = s.layout.name if s.layout is not None else None
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in itertools.chain(c.decode(s), [None]):  # None: flush the resampler
                for out in resampler.resample(frame):
                    a = out.to_ndarray()
                    total += a.shape[1]
                    if total > limit:
                        raise UserError(f"{track.path}: holds more sound than it declares; refusing it")
                    parts.append(a)
    except av.FFmpegError as e:
        raise UserError(f"{track.path}: cannot decode as sound ({type(e).__name__})") from None
    if not total:
        raise UserError(f"{track.path}: holds no sound")
    if declared and total < declared * (2 - SLACK) - 0.1 * rate:  # FFmpeg skips frames it cannot decode
        raise UserError(f"{track.path}: decodes to {total / rate:.2f} s of the {track.seconds:.2f} s it "
                        "declares (corrupt frames, or cut short)")
    x = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    if x.shape[0] != track.channels:
        raise UserError(f"{track.path}: decodes to {x.shape[0]} channels, declares {track.channels}")
    return x


def check_writable(path: Path) -> Path:
    if path.suffix.lower() not in AUDIO_FORMATS:
        raise UserError(f"{path}: unsupported sound output; use one of {', '.join(AUDIO_FORMATS)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{path}: cannot write, folder {parent} does not exist")
    if path.is_dir():
        raise UserError(f"{path}: cannot write, it is a folder")
    return path


def write(path: Path, samples: np.ndarray, rate: int, comment: str = "") -> Path:
    """Encode float samples (channels x n, -1..1) atomically; the comment tag carries the record."""
    av = _av()
    fmt, codec, codec_rate, options = AUDIO_FORMATS[path.suffix.lower()]
    channels = samples.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")
    try:
        with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt) as out:
            if comment:
                out.metadata["comment"] = comment
            stream = out.add_stream(codec, rate=codec_rate or rate)
            stream.layout = layout
            if codec == "pcm_s16le" or codec == "flac":
                stream.format = "s16"
            if options:
                stream.options = options
            block = 4096
            for k in range(0, samples.shape[1], block):
                pcm = np.clip(samples[:, k:k + block], -1.0, 1.0).astype(np.float32)  # a block at a time: no copy
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm), format="fltp", layout=layout)
                frame.sample_rate = rate
                frame.pts = k
                frame.time_base = Fraction(1, rate)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    except av.FFmpegError as e:
        raise UserError(f"{path}: cannot encode ({e})") from None
    return path


def read_comment(path: Path) -> str | None:
    """The `comment` tag of a sound file (None if it has none)."""
    av = _av()
    try:
        with av.open(str(path)) as c:
            return c.metadata.get("comment") or (c.streams.audio[0].metadata.get("comment")
                                                 if c.streams.audio else None)
    except av.FFmpegError as e:
        raise UserError(f"{path}: cannot decode as sound ({type(e).__name__})") from None
