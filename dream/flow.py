"""Optical flow, warping and the occlusion check for temporally coherent video dreams, as pure functions.

A dreamt frame's added detail (dream minus its source frame) is carried onto the next frame along
the source frames' optical flow, so patterns move with the scene instead of boiling. Flow is taken
backward (from the new frame to the previous one): each new pixel looks up where it came from, which
leaves no holes. Pixels where the forward and backward flows disagree (occluded or uncovered) get
no carried detail: they take the plain frame.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

MIN_SIDE = 16  # DIS needs frames of at least 12 pixels a side; smaller ones are padded to this
Flow = np.ndarray  # HxWx2 float32: (dx, dy) from each pixel of one frame to its match in the other


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(np.clip(rgb, 0, 255).astype(np.uint8)), cv2.COLOR_RGB2GRAY)


def dis_flow(a: np.ndarray, b: np.ndarray) -> Flow:
    """OpenCV's DIS flow (medium preset) from RGB frame a to RGB frame b."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(a), _gray(b), None)


def farneback_flow(a: np.ndarray, b: np.ndarray) -> Flow:
    """OpenCV's Farneback flow from RGB frame a to RGB frame b."""
    return cv2.calcOpticalFlowFarneback(_gray(a), _gray(b), None, pyr_scale=0.5, levels=4, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


METHODS: dict[str, Callable[[np.ndarray, np.ndarray], Flow]] = {"dis": dis_flow, "farneback": farneback_flow}


def flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> Flow:
    """Flow from frame a to frame b: a(p) matches b(p + flow(p))."""
    try:
        fn = METHODS[method]
    except KeyError:
        raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}") from None
    h, w = a.shape[:2]
    pad = ((0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w)), (0, 0))
    if any(p[1] for p in pad):  # OpenCV's flows refuse tiny frames: edge-pad them, then crop the flow back
        a, b = np.pad(a, pad, mode="edge"), np.pad(b, pad, mode="edge")
    return np.ascontiguousarray(fn(a, b)[:h, :w]).astype(np.float32, copy=False)


def sample_grid(f: Flow) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates (x + dx, y + dy) for cv2.remap."""
    h, w = f.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return xs + f[..., 0], ys + f[..., 1]


def warp(img: np.ndarray, f: Flow) -> np.ndarray:
    """img sampled at p + f(p) (bilinear, edges replicated): img moved onto the frame f starts from."""
    mx, my = sample_grid(f)
    out = cv2.remap(np.ascontiguousarray(img, dtype=np.float32), mx, my, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def occluded(back: Flow, fwd: Flow, alpha: float = 0.01, beta: float = 0.5) -> np.ndarray:
    """Forward-backward check (Sundaram et al. 2010): True where following `back` then `fwd` does not
    return to the start, or where the match falls outside the frame.

    `back` goes from the new frame to the previous one, `fwd` from the previous to the new one.
    """
    h, w = back.shape[:2]
    fwd_at = warp(fwd, back)  # the forward flow at each pixel's match in the previous frame
    loop = back + fwd_at
    size = (back ** 2).sum(-1) + (fwd_at ** 2).sum(-1)
    bad = (loop ** 2).sum(-1) > alpha * size + beta
    mx, my = sample_grid(back)
    bad |= (mx < 0) | (mx > w - 1) | (my < 0) | (my > h - 1)
    return bad


def carry(src: np.ndarray, prev_src: np.ndarray, prev_dream: np.ndarray, back: Flow, fwd: Flow | None,
          blend: float) -> np.ndarray:
    """The start of the next frame: its source plus `blend` times the previous frame's added detail,
    warped along the flow; occluded pixels (when `fwd` is given) take the plain source frame."""
    detail = warp(prev_dream.astype(np.float32) - prev_src.astype(np.float32), back)
    if fwd is not None:
        detail[occluded(back, fwd)] = 0.0
    out = src.astype(np.float32) + np.float32(blend) * detail
    np.clip(out, 0.0, 255.0, out=out)
    return out
