"""SSD's layers: PriorBox (the default boxes) and DetectionOutput (weiliu89/caffe
detection_output_layer.cpp with bbox_util.cpp's rules).

Bottoms: the box offsets (N, priors * loc classes * 4), the class scores (N, priors * classes) and
PriorBox's (1, 2, priors * 4) corners then variances. Per image: decode every prior's box with its
variances (CENTER_SIZE, CORNER or CORNER_SIZE); per class but the background, keep the scores above
confidence_threshold, the top_k best, then greedy NMS (drop a box whose overlap with a kept one
exceeds nms_threshold); if more than keep_top_k survive over all classes, keep the best keep_top_k.
Top: (1, 1, D, 7) rows [image, label, score, xmin, ymin, xmax, ymax], images in order, then labels
ascending, then scores descending; no detection at all gives one row of -1. D depends on the data,
so the shape rule gives its upper bound and the ONNX output declares that axis symbolic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, register

CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3
MANY = 1 << 30  # NonMaxSuppression's per-class cap: Caffe's top_k is applied before NMS, not after


@dataclass(frozen=True)
class DetectionAttrs:
    num_classes: int
    share_location: bool
    background: int
    nms_threshold: float
    top_k: int  # -1: every box above the threshold
    keep_top_k: int  # -1: every survivor
    threshold: float | None  # None: no confidence threshold (Caffe's -FLT_MAX)
    code_type: int
    variance_in_target: bool

    @property
    def labels(self) -> list[int]:
        return [c for c in range(self.num_classes) if c != self.background]

    @property
    def loc_classes(self) -> int:
        return 1 if self.share_location else self.num_classes


def _attrs(p) -> DetectionAttrs:
    q = p.detection_output_param
    nms = q.nms_param
    if q.num_classes < 1:
        raise ConvertError(f"layer {p.name!r}: DetectionOutput needs num_classes")
    if nms.HasField("eta") and nms.eta != 1.0:
        raise ConvertError(f"layer {p.name!r}: DetectionOutput with adaptive NMS (eta {nms.eta:g}) is not "
                           "supported (ONNX's NonMaxSuppression has a fixed threshold)")
    if q.code_type not in (CORNER, CENTER_SIZE, CORNER_SIZE):
        raise ConvertError(f"layer {p.name!r}: unknown code_type {q.code_type}")
    return DetectionAttrs(
        num_classes=int(q.num_classes), share_location=q.share_location, background=int(q.background_label_id),
        nms_threshold=float(nms.nms_threshold), top_k=int(nms.top_k) if nms.HasField("top_k") else -1,
        keep_top_k=int(q.keep_top_k), threshold=float(q.confidence_threshold)
        if q.HasField("confidence_threshold") else None, code_type=int(q.code_type),
        variance_in_target=q.variance_encoded_in_target)


def max_detections(a: DetectionAttrs, batch: int, priors: int) -> int:
    """The most rows the layer can give (its static shape): per image keep_top_k, else every class's top_k."""
    per_class = priors if a.top_k < 0 else min(a.top_k, priors)
    per_image = len(a.labels) * per_class
    if a.keep_top_k > -1:
        per_image = min(per_image, a.keep_top_k)
    return max(1, batch * per_image)


# --- the torch forward: Caffe's loops, written plainly ----------------------------------------------

def decode(a: DetectionAttrs, loc, prior, var):
    """bbox_util.cpp DecodeBBox: offsets (..., 4) against priors (..., 4) as [xmin, ymin, xmax, ymax]."""
    import torch

    if a.variance_in_target:
        var = torch.ones_like(var)
    lo, hi = prior[..., :2], prior[..., 2:]
    size = hi - lo
    if a.code_type == CORNER:
        return prior + var * loc
    if a.code_type == CORNER_SIZE:
        return prior + var * loc * torch.cat([size, size], -1)
    centre = var[..., :2] * loc[..., :2] * size + (lo + hi) / 2
    half = torch.exp(var[..., 2:] * loc[..., 2:]) * size / 2
    return torch.cat([centre - half, centre + half], -1)


def overlaps(boxes: np.ndarray) -> np.ndarray:
    """JaccardOverlap of every pair (normalized boxes: no +1; an inverted box has size 0)."""
    x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
    size = np.where((x1 < x0) | (y1 < y0), 0.0, (x1 - x0) * (y1 - y0))
    iw = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])
    ih = np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None])
    inter = np.where((iw < 0) | (ih < 0), 0.0, iw * ih)
    union = size[:, None] + size[None] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(a: DetectionAttrs, boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """ApplyNMSFast: scores above the threshold, best first (stable), the top_k of them, then greedy."""
    order = np.arange(len(scores)) if a.threshold is None else np.flatnonzero(scores > a.threshold)
    order = order[np.argsort(-scores[order], kind="stable")]
    if a.top_k > -1:
        order = order[: a.top_k]
    iou = overlaps(boxes[order].astype(np.float64))
    kept: list[int] = []
    for i in range(len(order)):
        if all(iou[i, j] <= a.nms_threshold for j in kept):
            kept.append(i)
    return [int(order[i]) for i in kept]


def _image(a: DetectionAttrs, boxes: np.ndarray, scores: np.ndarray) -> list[tuple[int, int]]:
    """(label, prior) of one image's detections in Caffe's output order."""
    found = [(c, i) for c in a.labels for i in nms(a, boxes[:, 0 if a.share_location else c], scores[:, c])]
    if a.keep_top_k > -1 and len(found) > a.keep_top_k:
        best = sorted(range(len(found)), key=lambda j: -scores[found[j][1], found[j][0]])[: a.keep_top_k]
        found = sorted((found[j] for j in best), key=lambda d: d[0])  # labels ascending, scores kept in order
    return found


def forward_torch(a: DetectionAttrs, loc, conf, prior):
    import torch

    n = loc.shape[0]
    corners, var = prior[0, 0].reshape(-1, 4), prior[0, 1].reshape(-1, 4)
    boxes = decode(a, loc.reshape(n, corners.shape[0], a.loc_classes, 4), corners[:, None], var[:, None])
    scores = conf.reshape(n, corners.shape[0], a.num_classes)
    rows = []
    for b in range(n):
        for label, i in _image(a, boxes[b].detach().numpy(), scores[b].detach().numpy()):
            box = boxes[b, i, 0 if a.share_location else label]
            head = torch.tensor([b, label], dtype=loc.dtype)
            rows.append(torch.cat([head, scores[b, i, label:label + 1], box]))
    if not rows:
        return torch.full((1, 1, 1, 7), -1.0, dtype=loc.dtype)
    return torch.stack(rows).reshape(1, 1, -1, 7)


# --- the ONNX nodes ---------------------------------------------------------------------------------

class _Nodes:
    """Node makers bound to one layer's ONNX context and output name (short names for a long graph)."""

    def __init__(self, ctx, y: str):
        self.ctx, self.y = ctx, y

    def __call__(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        return self.ctx.node(op, inputs, [self.ctx.tmp(self.y, hint)], **attrs)[0]

    def i64(self, values: list[int], hint: str) -> str:
        return self.ctx.const_i64(values, f"{self.y}/{hint}")

    def f32(self, values, hint: str) -> str:
        return self.ctx.const(np.asarray(values, np.float32), f"{self.y}/{hint}")

    def scalar_i64(self, value: int, hint: str) -> str:
        return self.ctx.const(np.asarray(value, np.int64), f"{self.y}/{hint}")

    def arange(self, length: str, hint: str) -> str:
        """0, 1, ... length - 1 (int64) for a length given as a 1-element tensor."""
        return self("Range", [self.scalar_i64(0, hint + "0"), self("Squeeze", [length], hint + "n"),
                              self.scalar_i64(1, hint + "1")], hint)

    def cols(self, x: str, start: int, end: int, hint: str) -> str:
        """x[..., start:end]"""
        return self("Slice", [x, self.i64([start], hint + "s"), self.i64([end], hint + "e"),
                              self.i64([-1], hint + "a")], hint)


def _onnx_decode(n: _Nodes, a: DetectionAttrs, loc: str, prior: str) -> str:
    """(N, P, loc classes, 4) decoded boxes from the flat offsets and PriorBox's blob."""
    corners = n("Reshape", [n("Gather", [prior, n.i64([0], "c0")], "pc", axis=1), n.i64([1, -1, 1, 4], "ps")], "pr")
    var = n("Reshape", [n("Gather", [prior, n.i64([1], "c1")], "pv", axis=1), n.i64([1, -1, 1, 4], "vs")], "vr")
    offsets = n("Reshape", [loc, n.i64([0, -1, a.loc_classes, 4], "ls")], "lr")
    if not a.variance_in_target:
        offsets = n("Mul", [offsets, var], "lv")
    if a.code_type == CORNER:
        return n("Add", [corners, offsets], "boxes")
    lo, hi = n.cols(corners, 0, 2, "lo"), n.cols(corners, 2, 4, "hi")
    size = n("Sub", [hi, lo], "size")
    if a.code_type == CORNER_SIZE:
        return n("Add", [corners, n("Mul", [offsets, n("Concat", [size, size], "size2", axis=-1)], "ls2")], "boxes")
    centre = n("Add", [n("Mul", [n.cols(offsets, 0, 2, "oc"), size], "dc"),
                       n("Div", [n("Add", [lo, hi], "lh"), n.f32(2.0, "two")], "pc2")], "centre")
    half = n("Div", [n("Mul", [n("Exp", [n.cols(offsets, 2, 4, "os")], "ex"), size], "wh"), n.f32(2.0, "two2")], "half")
    return n("Concat", [n("Sub", [centre, half], "bmin"), n("Add", [centre, half], "bmax")], "boxes", axis=-1)


def _onnx_candidates(n: _Nodes, a: DetectionAttrs, boxes: str, conf: str) -> tuple[str, str, str]:
    """Per (image, label) the top_k scores and their boxes, flattened to (N * labels, K[, 4]) for NMS."""
    labels = len(a.labels)
    scores = n("Reshape", [conf, n.i64([0, -1, a.num_classes], "cs")], "cr")
    scores = n("Transpose", [n("Gather", [scores, n.i64(a.labels, "lab")], "cl", axis=2)], "ct", perm=[0, 2, 1])
    k = n("Shape", [scores], "np", start=2, end=3)
    if a.top_k > -1:
        k = n("Min", [k, n.i64([a.top_k], "topk")], "k")
    vals, idx = n.ctx.node("TopK", [scores, k], [n.ctx.tmp(n.y, "vals"), n.ctx.tmp(n.y, "idx")], axis=2)
    per_label = n("Transpose", [boxes], "bt", perm=[0, 2, 1, 3])  # (N, loc classes, P, 4)
    if a.share_location:
        per_label = n("Expand", [per_label, n.i64([1, labels, 1, 1], "ex")], "bx")
    else:
        per_label = n("Gather", [per_label, n.i64(a.labels, "lab2")], "bx", axis=1)
    pick = n("Expand", [n("Unsqueeze", [idx, n.i64([3], "u3")], "iu"), n.i64([1, 1, 1, 4], "e4")], "pick")
    chosen = n("GatherElements", [per_label, pick], "chosen", axis=2)  # (N, labels, K, 4)
    flat_boxes = n("Reshape", [n("Flatten", [chosen], "cf", axis=2), n.i64([0, -1, 4], "fb")], "fbr")
    flat_scores = n("Flatten", [vals], "vf", axis=2)  # (N * labels, K)
    return flat_boxes, flat_scores, n("Unsqueeze", [flat_scores, n.i64([1], "u1")], "su")


def _onnx_rows(n: _Nodes, a: DetectionAttrs, boxes: str, scores: str, nms_scores: str) -> tuple[str, str, str]:
    """NMS over every (image, label), then the rows [image, label, score, box] in NMS's order, which is
    Caffe's (images, then labels ascending, then scores descending); also each row's image and score."""
    ins = [boxes, nms_scores, n.i64([MANY], "many"), n.f32([a.nms_threshold], "iou")]
    if a.threshold is not None:
        ins.append(n.f32([a.threshold], "thr"))
    sel = n("NonMaxSuppression", ins, "sel")
    where = n("Concat", [n.cols(sel, 0, 1, "s0"), n.cols(sel, 2, 3, "s2")], "where", axis=1)
    group = n("Squeeze", [n.cols(sel, 0, 1, "g0"), n.i64([1], "sq")], "group")
    count = n.i64([len(a.labels)], "nl")
    image = n("Cast", [n("Div", [group, count], "img")], "imgf", to=1)
    label = n("Gather", [n.f32([float(c) for c in a.labels], "labels"), n("Mod", [group, count], "li")], "label")
    score = n("GatherND", [scores, where], "score")
    box = n("GatherND", [boxes, where], "box")
    unsq = lambda v, h: n("Unsqueeze", [v, n.i64([1], h + "u")], h)  # noqa: E731
    rows = n("Concat", [unsq(image, "ci"), unsq(label, "cl"), unsq(score, "cs"), box], "rows", axis=1)
    return rows, image, score


def _onnx_keep_top_k(n: _Nodes, a: DetectionAttrs, rows: str, image: str, score: str, loc: str) -> str:
    """Per image the keep_top_k best rows, in their first order: sort by score, then stably by image
    (TopK puts the lower index first among equals), rank within the image, keep, restore the order."""
    m = n("Shape", [score], "m")
    _, by_score = n.ctx.node("TopK", [score, m], [n.ctx.tmp(n.y, "bsv"), n.ctx.tmp(n.y, "bs")], axis=0)
    neg_image = n("Neg", [n("Gather", [image, by_score], "gi")], "ni")
    _, by_image = n.ctx.node("TopK", [neg_image, m], [n.ctx.tmp(n.y, "biv"), n.ctx.tmp(n.y, "bi")], axis=0)
    order = n("Gather", [by_score, by_image], "order")  # images ascending, scores descending
    img_sorted = n("Cast", [n("Gather", [image, order], "ig")], "igi", to=7)
    images = n.arange(n("Shape", [loc], "nb", start=0, end=1), "images")
    onehot = n("Cast", [n("Equal", [n("Unsqueeze", [img_sorted, n.i64([1], "u5")], "isu"), images], "eq")],
               "oh", to=7)
    starts = n("CumSum", [n("ReduceSum", [onehot, n.i64([0], "ax0")], "counts", keepdims=0),
                          n.scalar_i64(0, "cax")], "starts", exclusive=1)
    position = n.arange(m, "pos")
    rank = n("Sub", [position, n("Gather", [starts, img_sorted], "st")], "rank")
    kept = n("Compress", [order, n("Less", [rank, n.i64([a.keep_top_k], "ktk")], "keep")], "kept", axis=0)
    first, _ = n.ctx.node("TopK", [kept, n("Shape", [kept], "km")], [n.ctx.tmp(n.y, "first"), n.ctx.tmp(n.y, "fi")],
                          axis=0, largest=0)
    return n("Gather", [rows, first], "kept_rows", axis=0)


@register("DetectionOutput")
class DetectionOutput(Op):
    __doc__ = __doc__
    n_bottoms = (3, 3)

    def attrs(self, p):
        return _attrs(p)

    def shape(self, a, ins, name):
        loc, conf, prior = ins
        if len(prior) != 3 or prior[1] != 2 or prior[2] % 4:
            raise ConvertError(f"layer {name!r}: its third bottom must be PriorBox's (1, 2, 4 x priors), not {prior}")
        priors = prior[-1] // 4
        if loc[0] != conf[0] or math.prod(loc[1:]) != priors * a.loc_classes * 4 \
                or math.prod(conf[1:]) != priors * a.num_classes:
            raise ConvertError(f"layer {name!r}: {priors} priors do not match offsets {loc} and scores {conf} "
                               f"({a.num_classes} classes, {a.loc_classes} box sets)")
        return [(1, 1, max_detections(a, loc[0], priors), 7)]

    data_dependent_axes = (2,)

    def torch(self, a, m, xs):
        return [forward_torch(a, *xs)]

    def onnx(self, ctx, a, layer):
        (loc, conf, prior), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        n = _Nodes(ctx, y)
        boxes, scores, nms_scores = _onnx_candidates(n, a, _onnx_decode(n, a, loc, prior), conf)
        rows, image, score = _onnx_rows(n, a, boxes, scores, nms_scores)
        if a.keep_top_k > -1:
            rows = _onnx_keep_top_k(n, a, rows, image, score, loc)
        padded = n("Concat", [rows, n.f32(np.full((1, 7), -1.0), "none")], "padded", axis=0)
        count = n("Max", [n("Shape", [rows], "nr", start=0, end=1), n.i64([1], "one")], "count")
        first = n("Slice", [padded, n.i64([0], "z"), count, n.i64([0], "a0")], "first")
        ctx.node("Reshape", [first, ctx.const_i64([1, 1, -1, 7], y + "/out")], [y])


@dataclass(frozen=True)
class PriorAttrs:
    boxes: tuple[tuple[float, float], ...]  # (width, height) in pixels, in SSD's order per location
    variance: tuple[float, ...]
    clip: bool
    img: tuple[int, int]  # (h, w); 0 = from the image bottom
    step: tuple[float, float]  # (h, w); 0 = image size / map size
    offset: float


@register("PriorBox")
class PriorBox(Op):
    """SSD's prior_box_layer.cpp: for every map position and every box (min sizes, then sqrt(min*max),
    then each aspect ratio and its flip), the normalized corners, then their variances: (1, 2, L)."""

    n_bottoms = (2, 2)

    def attrs(self, p):
        q = p.prior_box_param
        ratios = [1.0]
        for r in q.aspect_ratio:
            for v in (r, 1 / r) if q.flip else (r,):
                if all(abs(v - e) > 1e-6 for e in ratios):
                    ratios.append(v)
        if not q.min_size or (q.max_size and len(q.max_size) != len(q.min_size)):
            raise ConvertError(f"layer {p.name!r}: PriorBox needs min_size (and one max_size per min_size)")
        boxes = []
        for i, s in enumerate(q.min_size):
            boxes.append((s, s))
            if q.max_size:
                boxes.append((math.sqrt(s * q.max_size[i]),) * 2)
            boxes += [(s * math.sqrt(r), s / math.sqrt(r)) for r in ratios if abs(r - 1) > 1e-6]
        var = tuple(q.variance) or (0.1,)
        if len(var) not in (1, 4):
            raise ConvertError(f"layer {p.name!r}: PriorBox takes 1 or 4 variances")
        img = (q.img_h, q.img_w) if q.img_h or q.img_w else (q.img_size, q.img_size)
        step = (q.step_h, q.step_w) if q.step_h or q.step_w else (q.step, q.step)
        return PriorAttrs(tuple(boxes), var * (4 // len(var)), q.clip, img, step, q.offset)

    def shape(self, a, ins, name):
        f = ins[0]
        return [(1, 2, f[2] * f[3] * len(a.boxes) * 4)]

    def onnx(self, ctx, a, layer):
        import numpy as np

        (f, im), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        c = lambda v, hint: ctx.const(np.asarray(v, np.float32), f"{y}/{hint}")  # noqa: E731
        fhw = ctx.node("Cast", [ctx.node("Shape", [f], [ctx.tmp(y, "fs")], start=2, end=4)[0]],
                       [ctx.tmp(y, "fhw")], to=1)[0]
        if a.img[0]:
            ihw = c(list(a.img), "img")
        else:
            ihw = ctx.node("Cast", [ctx.node("Shape", [im], [ctx.tmp(y, "is")], start=2, end=4)[0]],
                           [ctx.tmp(y, "ihw")], to=1)[0]
        step = c(list(a.step), "step") if a.step[0] else ctx.node("Div", [ihw, fhw], [ctx.tmp(y, "st")])[0]

        def axis(i, shape):  # centres along one axis, normalized: (arange(n) + offset) * step / img
            n = ctx.node("Gather", [fhw, ctx.const_i64([i], f"{y}/i{i}")], [ctx.tmp(y, f"n{i}")], axis=0)[0]
            r = ctx.node("Range", [ctx.scalar(0.0), ctx.node("Squeeze", [n], [ctx.tmp(y, f"sq{i}")])[0],
                                   ctx.scalar(1.0)], [ctx.tmp(y, f"r{i}")])[0]
            s = ctx.node("Gather", [step, ctx.const_i64([i], f"{y}/j{i}")], [ctx.tmp(y, f"s{i}")], axis=0)[0]
            d = ctx.node("Gather", [ihw, ctx.const_i64([i], f"{y}/k{i}")], [ctx.tmp(y, f"d{i}")], axis=0)[0]
            v = ctx.node("Mul", [ctx.node("Add", [r, ctx.scalar(a.offset)], [ctx.tmp(y, f"o{i}")])[0], s],
                         [ctx.tmp(y, f"c{i}")])[0]
            v = ctx.node("Div", [v, d], [ctx.tmp(y, f"cn{i}")])[0]
            half = ctx.node("Div", [c([[b[1 - i] / 2 for b in a.boxes]], f"half{i}"), d], [ctx.tmp(y, f"h{i}")])[0]
            v = ctx.node("Reshape", [v, ctx.const_i64(shape, f"{y}/rs{i}")], [ctx.tmp(y, f"v{i}")])[0]
            return (ctx.node("Sub", [v, half], [ctx.tmp(y, f"lo{i}")])[0],
                    ctx.node("Add", [v, half], [ctx.tmp(y, f"hi{i}")])[0])

        y0, y1 = axis(0, [-1, 1, 1])  # (H, 1, K)
        x0, x1 = axis(1, [1, -1, 1])  # (1, W, K)
        zero = ctx.node("Mul", [ctx.node("Add", [y0, x0], [ctx.tmp(y, "grid")])[0], ctx.scalar(0.0)],
                        [ctx.tmp(y, "zero")])[0]
        parts = [ctx.node("Unsqueeze", [ctx.node("Add", [v, zero], [ctx.tmp(y, f"e{j}")])[0],
                                        ctx.const_i64([3], f"{y}/u{j}")], [ctx.tmp(y, f"p{j}")])[0]
                 for j, v in enumerate((x0, y0, x1, y1))]
        corners = ctx.node("Concat", parts, [ctx.tmp(y, "corners")], axis=3)[0]
        if a.clip:
            corners = ctx.node("Clip", [corners, ctx.scalar(0.0), ctx.scalar(1.0)], [ctx.tmp(y, "clip")])[0]
        flat = ctx.node("Reshape", [corners, ctx.const_i64([1, 1, -1], f"{y}/flat")], [ctx.tmp(y, "flat")])[0]
        var = ctx.node("Add", [ctx.node("Mul", [corners, ctx.scalar(0.0)], [ctx.tmp(y, "z4")])[0],
                               c(list(a.variance), "var")], [ctx.tmp(y, "varg")])[0]
        var = ctx.node("Reshape", [var, ctx.const_i64([1, 1, -1], f"{y}/vflat")], [ctx.tmp(y, "vflat")])[0]
        ctx.node("Concat", [flat, var], [y], axis=1)

    def torch(self, a, m, xs):
        import torch

        f, im = xs
        fh, fw = f.shape[2:]
        ih, iw = a.img if a.img[0] else im.shape[2:]
        sh, sw = a.step if a.step[0] else (ih / fh, iw / fw)
        kw = torch.tensor([b[0] / 2 for b in a.boxes], dtype=f.dtype)
        kh = torch.tensor([b[1] / 2 for b in a.boxes], dtype=f.dtype)
        cy = ((torch.arange(fh, dtype=torch.float64) + a.offset) * sh).to(f.dtype)[:, None, None]
        cx = ((torch.arange(fw, dtype=torch.float64) + a.offset) * sw).to(f.dtype)[None, :, None]
        zero = torch.zeros(fh, fw, len(a.boxes), dtype=f.dtype)
        corners = torch.stack([(cx - kw) / iw + zero, (cy - kh) / ih + zero, (cx + kw) / iw + zero,
                               (cy + kh) / ih + zero], dim=3)
        if a.clip:
            corners = corners.clamp(0, 1)
        var = torch.tensor(a.variance, dtype=f.dtype).expand_as(corners)
        return [torch.stack([corners.reshape(-1), var.reshape(-1)])[None]]
