"""Caffe's layer formulas written as plainly as possible in numpy, loops and all (tiny inputs only)."""

from __future__ import annotations

import math

import numpy as np


def conv(x, w, b, stride=(1, 1), pad=(0, 0), dilation=(1, 1), group=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = stride
    ph, pw = pad
    dh, dw = dilation
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (wd + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), np.float64)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    y = np.zeros((n, o, oh, ow), np.float64)
    og = o // group
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, g * cg:(g + 1) * cg, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw]
                y[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
        if b is not None:
            y[:, oc] += b[oc]
    return y


def pool_out(size, k, s, p):
    out = int(math.ceil((size + 2 * p - k) / s)) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool(x, method, kernel, stride, pad):
    """pooling_layer.cpp: MAX over the window clipped to the image; AVE divides by the window
    clipped to H + pad (padding counts, the overhang past it does not)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    oh, ow = pool_out(h, kh, sh, ph), pool_out(w, kw, sw, pw)
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * sh - ph, j * sw - pw
            he, we = min(hs + kh, h + ph), min(ws + kw, w + pw)
            size = (he - hs) * (we - ws)
            hs0, ws0, he0, we0 = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            win = x[:, :, hs0:he0, ws0:we0]
            y[:, :, i, j] = win.max(axis=(2, 3)) if method == "MAX" else win.sum(axis=(2, 3)) / size
    return y


def lrn_across(x, n, alpha, beta, k):
    c = x.shape[1]
    y = np.zeros_like(x, dtype=np.float64)
    pre = (n - 1) // 2
    for ch in range(c):
        lo, hi = max(0, ch - pre), min(c, ch - pre + n)
        s = (x[:, lo:hi].astype(np.float64) ** 2).sum(axis=1)
        y[:, ch] = x[:, ch] * (k + alpha / n * s) ** (-beta)
    return y


def lrn_within(x, n, alpha, beta):
    p = (n - 1) // 2
    avg = pool(x.astype(np.float64) ** 2, "AVE", (n, n), (1, 1), (p, p))
    return x * (1 + alpha * avg) ** (-beta)


def stochastic_test(x, k, s):
    """Caffe's GPU test-time STOCHASTIC pooling (no pad): sum(x^2) / sum(x) over each clipped window."""
    n, c, h, w = x.shape
    oh, ow = pool_out(h, k, s, 0), pool_out(w, k, s, 0)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * s:min(i * s + k, h), j * s:min(j * s + k, w)].astype(np.float64)
            den = win.sum(axis=(2, 3))
            y[:, :, i, j] = np.where(den == 0, 0, (win ** 2).sum(axis=(2, 3)) / np.where(den == 0, 1, den))
    return y


def unpool(x, mask, oh, ow):
    """SegNet's Upsample: each value to the flat index in its channel's oh x ow plane."""
    n, c = x.shape[:2]
    y = np.zeros((n, c, oh * ow))
    for a in range(n):
        for b in range(c):
            for v, m in zip(x[a, b].ravel(), mask[a, b].ravel()):
                y[a, b, int(m)] = v
    return y.reshape(n, c, oh, ow)


def max_mask(x, k, s):
    """Caffe's MAX pooling mask (no pad): the first maximum's index h * W + w."""
    n, c, h, w = x.shape
    oh, ow = pool_out(h, k, s, 0), pool_out(w, k, s, 0)
    m = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for a in range(n):
                for b in range(c):
                    win = x[a, b, i * s:min(i * s + k, h), j * s:min(j * s + k, w)]
                    r, q = np.unravel_index(np.argmax(win), win.shape)
                    m[a, b, i, j] = (i * s + r) * w + j * s + q
    return m


def spp(x, height, method):
    """spp_layer.cpp: per level, a Caffe pooling of kernel ceil(H / bins), stride kernel, pad
    (kernel * bins - H + 1) // 2; flattened and concatenated."""
    n, c, h, w = x.shape
    outs = []
    for lv in range(height):
        b = 2 ** lv
        kh, kw = -(-h // b), -(-w // b)
        ph, pw = (kh * b - h + 1) // 2, (kw * b - w + 1) // 2
        outs.append(pool(x, method, (kh, kw), (kh, kw), (ph, pw)).reshape(n, -1))
    return np.concatenate(outs, 1)
