"""A net whose only output is silenced (colorization_deploy_v2 ends with Silence on class8_ab, the
blob its users read): the silenced blobs become the outputs, with a note; checked against OpenCV."""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo.convert.errors import ConvertError

from tests.caffe_helpers import check_everywhere, graph_from_text
from zoo import convert

TAIL = Path(__file__).parent / "data" / "colorization_tail.prototxt"


def test_colorization_tail_keeps_class8_ab_and_says_so():
    g = convert.load_net(TAIL)
    assert g.outputs == ["class8_ab"]
    assert any("silenced" in n and "class8_ab" in n for n in g.notes)


def test_colorization_tail_matches_opencv_at_two_sizes_and_batches(tmp_path):
    check_everywhere(TAIL.read_text(), tmp_path, [(1, 1, 32, 32), (2, 1, 24, 40)], blobs=["class8_ab"])


def test_silence_beside_a_real_output_still_drops_the_silenced_blob():
    g = graph_from_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 4 input_dim: 4\n'
                        'layer { name: "a" type: "ReLU" bottom: "data" top: "a" }\n'
                        'layer { name: "b" type: "Sigmoid" bottom: "data" top: "b" }\n'
                        'layer { name: "s" type: "Silence" bottom: "a" }\n')
    assert g.outputs == ["b"] and not g.notes


def test_a_net_of_only_a_silenced_input_still_has_no_output():
    with pytest.raises(ConvertError, match="no output"):
        graph_from_text('input: "data" input_dim: 1 input_dim: 2 input_dim: 4 input_dim: 4\n'
                        'layer { name: "s" type: "Silence" bottom: "data" }\n')
