"""Random and mutated prototxt text and weight bytes: the only exception allowed out is ConvertError."""

from __future__ import annotations

import contextlib
import functools
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zoo.convert.build import build_graph
from zoo.convert.errors import ConvertError
from zoo.convert.prototxt import parse_prototxt
from zoo.convert.upgrade import upgrade_net
from zoo.convert.weights import read_caffemodel, read_mean

from tests.conftest import MODELS, shared_or_skip


@functools.cache
def seeds() -> list[str]:
    """Real prototxts to mutate (read when a test runs: without ../shared the tests skip, collection works)."""
    return [shared_or_skip(MODELS / p).read_text() for p in ("mtcnn/det1.prototxt", "gender_net/deploy_gender.prototxt",
                                                             "bvlc_googlenet/deploy.prototxt")]


@functools.cache
def weights() -> bytes:
    return shared_or_skip(MODELS / "mtcnn" / "det1.caffemodel").read_bytes()

TOKENS = ["layer {", "}", "{", "bottom: ", "top: ", '"data"', '"conv1"', "num_output: ", "kernel_size: ", "0",
          "-1", "99999999", "pool: AVE", "type: ", '"Pooling"', '"Concat"', '"Slice"', "input_dim: ", "stride: 0",
          "pad: 7", "axis: -9", "\n", "#", '"', "layers {", "CONVOLUTION", "slice_point: 3", "global_pooling: true"]

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def build(text: str) -> None:
    g = build_graph(upgrade_net(parse_prototxt(text)), "<fuzz>")
    g.shapes()


def allowed(fn, *args) -> None:
    """Run fn; succeeding or raising ConvertError are both fine, anything else fails the test."""
    with contextlib.suppress(ConvertError):
        fn(*args)


@st.composite
def mutated_text(draw):
    text = draw(st.sampled_from(seeds()))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            text = text[:pos] + draw(st.sampled_from(TOKENS)) + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 40)):]
        else:
            text = text[:pos] + draw(st.text(max_size=8)) + text[pos + 8:]
    return text


@FUZZ
@given(mutated_text())
def test_mutated_prototxt(text):
    allowed(build, text)


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    allowed(build, text)


@st.composite
def mutated_bytes(draw):
    data = bytearray(weights())
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 500))]
        else:
            data[pos:pos] = draw(st.binary(max_size=16))
    return bytes(data)


def read_bytes_as(reader, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "w.caffemodel"
        p.write_bytes(data)
        reader(p)


@FUZZ
@given(st.one_of(mutated_bytes(), st.binary(max_size=400)))
def test_weight_bytes(data):
    allowed(read_bytes_as, read_caffemodel, data)
    allowed(read_bytes_as, read_mean, data)
