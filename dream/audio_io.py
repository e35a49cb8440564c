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
# muxer options: FFmpeg's Ogg muxer draws a random stream serial number unless told to be bit-exact
MUX_OPTIONS: dict[str, dict[str, str]] = {"ogg": {"fflags": "+bitexact"}}
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
    is refused rather than followed. With a declared length the samples go straight into one
    buffer of that size (no list of frames and no concatenated copy: the track is held once)."""
    av = _av()
    from zoo import memory

    rate = rate or track.rate
    declared = int(track.samples * rate / track.rate)
    free = memory.available_bytes() // (BYTES_PER_SAMPLE * track.channels)
    limit = int(declared * SLACK) + rate if declared else int(free)
    buf = _Samples(track.channels, declared)
    try:
        with av.open(str(track.path)) as c:
            s = c.streams.audio[0]
            layout = s.layout.name if s.layout is not None else None
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            for frame in itertools.chain(c.decode(s), [None]):  # None: flush the resampler
                for out in resampler.resample(frame):
                    a = out.to_ndarray()
                    if buf.total + a.shape[1] > limit:
                        raise UserError(f"{track.path}: holds more sound than it declares; refusing it")
                    if a.shape[0] != track.channels:
                        raise UserError(f"{track.path}: decodes to {a.shape[0]} channels, declares {track.channels}")
                    buf.add(a)
    except av.FFmpegError as e:
        raise UserError(f"{track.path}: cannot decode as sound ({type(e).__name__})") from None
    total = buf.total
    if not total:
        raise UserError(f"{track.path}: holds no sound")
    if declared and total < declared * (2 - SLACK) - 0.1 * rate:  # FFmpeg skips frames it cannot decode
        raise UserError(f"{track.path}: decodes to {total / rate:.2f} s of the {track.seconds:.2f} s it "
                        "declares (corrupt frames, or cut short)")
    return buf.samples()


class _Samples:
    """Decoded frames gathered into one float32 buffer of the declared length (grown by halves past it)."""

    def __init__(self, channels: int, declared: int) -> None:
        self.data = np.empty((channels, max(declared, 1)), np.float32)
        self.total = 0

    def add(self, a: np.ndarray) -> None:
        end = self.total + a.shape[1]
        if end > self.data.shape[1]:
            grown = np.empty((self.data.shape[0], max(end, self.data.shape[1] * 3 // 2)), np.float32)
            grown[:, :self.total] = self.data[:, :self.total]
            self.data = grown
        self.data[:, self.total:end] = a
        self.total = end

    def samples(self) -> np.ndarray:
        """The samples decoded: a view of the buffer (a few samples short of the declared length is
        usual), a copy only when most of the buffer went unused."""
        view = self.data[:, :self.total]
        return np.ascontiguousarray(view) if self.total < self.data.shape[1] // 2 else view


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
        with atomic_path(path) as tmp, av.open(str(tmp), "w", format=fmt, options=MUX_OPTIONS.get(fmt, {})) as out:
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
