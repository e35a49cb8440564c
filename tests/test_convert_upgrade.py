"""Caffe's oldest format, V0 (2013), upgraded as Caffe's upgrade_proto does.

The V0 text is a real one from BVLC/caffe's history (tests/data/caffenet_v0_deploy.prototxt, CaffeNet with
separate `padding` layers, commit 91254090). The reference for the upgrade is what Caffe's own
`upgrade_net_proto_text` wrote for that net (tests/data/caffenet_v1_upgraded_by_caffe.prototxt, commit
1fbb5bb3); the reference for the numbers is OpenCV dnn running the upgraded V2 text.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from zoo.convert.errors import ConvertError
from zoo.convert.proto import caffe_pb2
from zoo.convert.prototxt import parse_prototxt, read_prototxt, to_text
from zoo.convert.upgrade import is_v0, upgrade_net
from zoo.convert.weights import read_weights

from tests.caffe_helpers import check_everywhere, seeded_files

DATA = Path(__file__).parent / "data"
V0 = DATA / "caffenet_v0_deploy.prototxt"


def test_v0_caffenet_upgrades_to_what_caffes_own_tool_wrote() -> None:
    v0 = read_prototxt(V0)
    assert is_v0(v0) and len(v0.layers) == 27  # 23 layers and 4 padding layers
    ours = upgrade_net(v0, str(V0))
    ref = upgrade_net(read_prototxt(DATA / "caffenet_v1_upgraded_by_caffe.prototxt"), "caffe's upgrade")
    assert [lyr.name for lyr in ours.layer] == [lyr.name for lyr in ref.layer]  # pad2..pad5 folded away
    for a, b in zip(ours.layer, ref.layer):
        assert a == b, f"{a.name}:\n{to_text(a)}\n!=\n{to_text(b)}"
    assert list(ours.input) == ["data"] and list(ours.input_dim) == [10, 3, 227, 227]
    conv2 = next(lyr for lyr in ours.layer if lyr.name == "conv2")
    assert list(conv2.bottom) == ["norm1"] and list(conv2.convolution_param.pad) == [2]


def _narrow(text: str) -> str:
    """CaffeNet's topology with fewer channels (every width divided by 8, groups still divide): same
    layers, pads and strides, small enough for three runtimes in a test."""
    return re.sub(r"num_output: (\d+)", lambda m: f"num_output: {max(int(m.group(1)) // 8, 2)}", text)


def test_v0_net_runs_like_opencv_on_its_upgraded_v2_form(tmp_path: Path) -> None:
    v2 = to_text(upgrade_net(parse_prototxt(_narrow(V0.read_text())), "v0"))
    assert "padding" not in v2 and 'type: "Convolution"' in v2
    # deploy size, another batch, another size that still fits fc6 (pool5 stays 6x6 up to 230)
    check_everywhere(v2, tmp_path, [(1, 3, 227, 227), (2, 3, 227, 227), (1, 3, 230, 229)],
                     ["conv2", "norm2", "conv5", "pool5", "fc8", "prob"])


def test_v0_binary_caffemodel_reads_like_its_v2_copy(tmp_path: Path) -> None:
    """A V0 .caffemodel keeps name and blobs inside `layers { layer { } }` (fields 1 and 50)."""
    v2 = to_text(upgrade_net(parse_prototxt(_narrow(V0.read_text())), "v0"))
    _, weights, g = seeded_files(v2, tmp_path)
    net = caffe_pb2.NetParameter()
    for layer in g.layers:
        rec = net.layers.add()
        rec.layer.name = layer.name
        rec.layer.type = "conv" if layer.type == "Convolution" else "innerproduct"
        for blob in layer.blobs:
            b = rec.layer.blobs.add(num=1, channels=1, height=1, width=int(blob.size))
            b.data.extend(np.asarray(blob).ravel().tolist())
    v0_model = tmp_path / "v0.caffemodel"
    v0_model.write_bytes(net.SerializeToString())
    got, ref = read_weights(v0_model), read_weights(weights)
    assert sorted(got) == sorted(ref) == sorted(lyr.name for lyr in g.layers if lyr.blobs)
    for name in ref:
        for a, b in zip(got[name], ref[name]):
            assert np.array_equal(a.ravel(), b.ravel()), name


def test_padding_layer_before_another_type_is_refused_like_caffe(tmp_path: Path) -> None:
    text = '''input: "data" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8
layers { layer { name: "pad" type: "padding" pad: 1 } bottom: "data" top: "p" }
layers { layer { name: "fc" type: "innerproduct" num_output: 4 } bottom: "p" top: "fc" }
'''
    with pytest.raises(ConvertError, match="padding layer 'pad' feeds 'fc' \\(innerproduct\\)"):
        upgrade_net(parse_prototxt(text), "t.prototxt")
    with pytest.raises(ConvertError, match="V0 type 'fancy'"):
        upgrade_net(parse_prototxt(text.replace('"innerproduct"', '"fancy"').replace('"padding"', '"relu"')), "t")


def test_v0_concat_average_pool_and_padding_into_a_pool(tmp_path: Path) -> None:
    """The V0 settings CaffeNet lacks: concat_dim, AVE pooling, a padding layer before a pool, biasterm."""
    text = '''input: "data" input_dim: 1 input_dim: 3 input_dim: 11 input_dim: 9
layers { layer { name: "a" type: "conv" num_output: 4 kernelsize: 3 stride: 2 pad: 1 biasterm: false } bottom: "data" top: "a" }
layers { layer { name: "pad" type: "padding" pad: 1 } bottom: "data" top: "p" }
layers { layer { name: "b" type: "pool" pool: AVE kernelsize: 3 stride: 2 } bottom: "p" top: "b" }
layers { layer { name: "t" type: "tanh" } bottom: "b" top: "b" }
layers { layer { name: "cat" type: "concat" concat_dim: 1 } bottom: "a" bottom: "b" top: "cat" }
layers { layer { name: "s" type: "sigmoid" } bottom: "cat" top: "s" }
'''
    net = upgrade_net(parse_prototxt(text), "v0")
    pool = net.layer[1]
    assert (pool.type, list(pool.bottom), pool.pooling_param.pad, pool.pooling_param.pool) == ("Pooling", ["data"], 1, 1)
    assert net.layer[0].convolution_param.bias_term is False and net.layer[3].concat_param.concat_dim == 1
    check_everywhere(to_text(net), tmp_path, [(1, 3, 11, 9), (2, 3, 11, 9), (1, 3, 13, 7)], ["a", "b", "s"])
