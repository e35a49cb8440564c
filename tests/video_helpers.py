"""A test clip with known motion: a pan and zoom over skimage's astronaut, encoded by PyAV with a sine tone.

Frame t shows the photo through the affine map p -> s_t * p + o_t (p in frame pixels, photo pixels
out), so where each pixel of frame t was in frame t-1 is known exactly: the reference motion for
the temporal-consistency measure (independent of the optical flow under test).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

PHOTO_SIDE, ZOOM, OFFSET0, PAN = 218, 0.985, np.array([26.0, 34.0]), np.array([1.7, 0.85])
TONE_HZ, RATE = 440.0, 44100


def affine(t: int, side: int) -> tuple[float, np.ndarray]:
    """(scale, offset) of frame t: frame pixel p shows point scale * p + offset of the photo at PHOTO_SIDE."""
    k = side / 128
    return ZOOM ** t, k * (OFFSET0 + t * PAN)


def clip_frames(n: int, side: int) -> list[np.ndarray]:
    side_px = round(PHOTO_SIDE * side / 128)  # shrunk with area averaging first, so the pan does not alias
    photo = cv2.resize(data.astronaut(), (side_px, side_px), interpolation=cv2.INTER_AREA)
    out = []
    for t in range(n):
        s, o = affine(t, side)
        m = np.array([[s, 0, o[0]], [0, s, o[1]]], np.float64)
        out.append(cv2.warpAffine(photo, m, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT))
    return out


def make_clip(path: Path, n: int = 24, side: int = 128, fps: int = 24, audio: bool = True) -> Path:
    """Encode the pan/zoom clip (libx264, high quality) with a sine tone as long as the video."""
    frames = clip_frames(n, side)
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width = vs.height = side
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "4"}
        if audio:
            a = c.add_stream("aac", rate=RATE)
            a.layout = "mono"
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if audio:
            samples = int(RATE * n / fps)
            tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * np.arange(samples) / RATE)).astype(np.float32)
            for k in range(0, samples, 1024):
                fr = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="fltp", layout="mono")
                fr.sample_rate = RATE
                fr.pts = k
                fr.time_base = Fraction(1, RATE)
                for p in a.encode(fr):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def true_back_map(t: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """For frame t's pixels, their position in frame t-1 (remap maps), from the known affine maps."""
    s1, o1 = affine(t, side)
    s0, o0 = affine(t - 1, side)
    xs, ys = np.meshgrid(np.arange(side, dtype=np.float64), np.arange(side, dtype=np.float64))
    mx = (s1 * xs + o1[0] - o0[0]) / s0
    my = (s1 * ys + o1[1] - o0[1]) / s0
    return mx.astype(np.float32), my.astype(np.float32)


def temporal_error(frames: list[np.ndarray], margin: int = 12) -> float:
    """mean |out_t - out_{t-1} moved by the true motion| over the interior, averaged over t."""
    side = frames[0].shape[0]
    errs = []
    for t in range(1, len(frames)):
        mx, my = true_back_map(t, side)
        prev = cv2.remap(frames[t - 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        d = np.abs(frames[t].astype(np.float32) - prev)[margin:-margin, margin:-margin]
        errs.append(float(d.mean()))
    return float(np.mean(errs))


def pair_errors(frames: list[np.ndarray], margin: int = 12) -> list[float]:
    """The same measure for each consecutive pair (t-1, t), t = 1..n-1."""
    side = frames[0].shape[0]
    out = []
    for t in range(1, len(frames)):
        mx, my = true_back_map(t, side)
        prev = cv2.remap(frames[t - 1].astype(np.float32), mx, my, cv2.INTER_LINEAR)
        out.append(float(np.abs(frames[t].astype(np.float32) - prev)[margin:-margin, margin:-margin].mean()))
    return out


def read_video(path: Path) -> tuple[list[np.ndarray], Fraction, float | None]:
    """Decoded RGB frames, the average frame rate and the audio duration in seconds (None: no audio)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        fps = v.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(v)]
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return frames, fps, None
        a = c.streams.audio[0]
        samples = sum(f.samples for f in c.decode(a))
        return frames, fps, samples / a.rate


if __name__ == "__main__":  # python tests/video_helpers.py pan.mp4 [frames] [side]: the README's test clip
    import sys

    make_clip(Path(sys.argv[1]), n=int(sys.argv[2]) if len(sys.argv) > 2 else 24,
              side=int(sys.argv[3]) if len(sys.argv) > 3 else 128)
