"""The tolerant prototxt reader is linear in unknown fields: it finds every field the schema lacks in
one pass over the text and parses once (it re-parsed the whole text once per unknown field, so a
49 KB file with 3,000 of them took seconds). Proven by structure, never by timing: protobuf's parser
is called once however many unknown fields there are, and each unknown field still lands verbatim in
its own layer's zoo_unknown."""

from __future__ import annotations

from google.protobuf import text_format
from zoo.convert import prototxt

HEAD = 'name: "n"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'


def layer(i: int) -> str:
    return (f'layer {{ name: "r{i}" type: "ReLU" bottom: "data" top: "r{i}" fork_flag_{i}: true\n'
            f'  relu_param {{ negative_slope: 0.5 odd_{i} {{ a: 1 b {{ c: "x}}" }} }} }}\n'
            f'  # a comment naming unknown_{i}: 3\n}}\n')


def counted(monkeypatch) -> list[int]:
    calls = [0]
    real = text_format.Parse

    def parse(*a, **k):
        calls[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(prototxt.text_format, "Parse", parse)
    return calls


def test_three_thousand_unknown_fields_parse_once(monkeypatch):
    calls = counted(monkeypatch)
    text = HEAD + "".join(layer(i) for i in range(1500))  # 3,000 unknown fields (two per layer), ~160 KB
    net = prototxt.parse_prototxt(text)
    assert calls[0] == 1
    assert len(net.layer) == 1500
    for i in (0, 777, 1499):
        got = list(net.layer[i].zoo_unknown)
        assert got == [f"fork_flag_{i}: true", f'ReLUParameter odd_{i} {{ a: 1 b {{ c: "x}}" }} }}'], got
        assert net.layer[i].relu_param.negative_slope == 0.5


def test_unknown_fields_outside_layers_and_errors_after_them(monkeypatch):
    calls = counted(monkeypatch)
    net = prototxt.parse_prototxt(HEAD + "weird_top: 3\n" + layer(0))
    assert calls[0] == 1 and net.layer[0].name == "r0"
    import pytest
    from zoo.convert.errors import ConvertError

    with pytest.raises(ConvertError, match=r"<prototxt>:8:\d+: .*"):  # a real error still names line and column
        prototxt.parse_prototxt(HEAD + layer(0) + 'layer { name: "bad" type: ReLU" }\n')
