"""The graph view's layout (zoo.studio.graph_layout) on real networks: GoogLeNet (inception branches),
efficientnet_lite0 (residual adds), and the two SSD deploy nets of tests/data (heads from many trunk
layers): no box over another, no edge through a box, every label inside its box as FreeType measures
it in DejaVu Sans (the font the page asks for), long names shortened with their full text kept."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import SHARED, shared_or_skip
from zoo import convert
from zoo.studio import graph_layout as gl
from zoo.studio.routes.brains import graph_json

DATA = Path(__file__).parent / "data"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
NETS = {  # prototxt, input size, least number of edges that skip rows
    "bvlc_googlenet": (SHARED / "models" / "bvlc_googlenet" / "deploy.prototxt", (224, 224), 9),
    "efficientnet_lite0": (SHARED / "models" / "efficientnet_lite0" / "deploy.prototxt", (224, 224), 9),
    "ssd300": (DATA / "ssd300_voc_narrow.prototxt", (300, 300), 6),
    "ssd_mobilenet": (DATA / "ssd_mobilenet_voc_narrow.prototxt", (300, 300), 6),
}


@pytest.fixture(scope="module", params=sorted(NETS))
def view(request) -> tuple[str, dict]:
    proto, size, _ = NETS[request.param]
    g = graph_json(convert.load_net(shared_or_skip(proto)), SimpleNamespace(name=request.param), size)
    return request.param, g


def crosses(a, b, box, margin: float = 0.5) -> bool:
    """Whether segment a-b meets the box shrunk by `margin` (Liang-Barsky clipping)."""
    left, top = box["x"] + margin, box["y"] + margin
    right, bottom = box["x"] + box["w"] - margin, box["y"] + box["h"] - margin
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, a[0] - left), (dx, right - a[0]), (-dy, a[1] - top), (dy, bottom - a[1])):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    return t0 <= t1


def test_crosses_is_a_real_test():
    box = {"x": 10, "y": 10, "w": 20, "h": 10}
    assert crosses((0, 15), (40, 15), box) and crosses((20, 0), (20, 30), box)
    assert not crosses((0, 0), (40, 0), box) and not crosses((20, 20), (20, 40), box)  # touching its edge only


def test_no_box_overlaps_another(view):
    _, g = view
    nodes = g["layout"]["nodes"]
    assert len(nodes) == len(g["layers"])
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            apart = (a["x"] + a["w"] <= b["x"] or b["x"] + b["w"] <= a["x"] or a["y"] + a["h"] <= b["y"]
                     or b["y"] + b["h"] <= a["y"])
            assert apart, (a["name"], b["name"])


def test_no_edge_passes_through_a_box_and_skip_edges_exist(view):
    """Every drawn segment (the page curves the ones between rows, inside the same rows) misses every
    box, its own two layers' included (it only touches their sides)."""
    name, g = view
    lay = g["layout"]
    nodes = {n["name"]: n for n in lay["nodes"]}
    assert len(lay["edges"]) == len(g["edges"])
    skips = [e for e in lay["edges"] if e["skip"]]
    assert len(skips) >= NETS[name][2]
    for e in lay["edges"]:
        pts = e["points"]
        src, dst = nodes[e["from"]], nodes[e["to"]]
        assert pts[0][1] == src["y"] + src["h"] and src["x"] <= pts[0][0] <= src["x"] + src["w"]
        assert pts[-1][1] == dst["y"] and dst["x"] <= pts[-1][0] <= dst["x"] + dst["w"]
        for a, b in zip(pts, pts[1:]):
            assert b[1] >= a[1]  # always downward
            hit = [n["name"] for n in lay["nodes"] if crosses(a, b, n)]
            assert not hit, (e["from"], e["to"], a, b, hit)


def test_every_label_fits_its_box_in_dejavu_sans(view):
    if not DEJAVU.is_file():
        pytest.skip("DejaVu Sans is not installed (fonts-dejavu-core)")
    from PIL import ImageFont

    font = ImageFont.truetype(str(DEJAVU), gl.FONT_PX)
    lay = view[1]["layout"]
    for n in lay["nodes"]:
        assert len(n["lines"]) * lay["line"] + 2 * lay["pad"][1] <= n["h"]
        for k, line in enumerate(n["lines"]):
            assert font.getlength(line["text"]) <= n["w"] - 2 * lay["pad"][0], (n["name"], line["text"])
            whole = f"{n['name']} · {n['type']}" if k == 0 else line["full"].removeprefix("blob ")
            head, _, tail = line["text"].partition("…")
            assert line["text"] == whole or (whole.startswith(head) and whole.endswith(tail)), (whole, line["text"])


def test_long_names_are_shortened_with_the_full_name_kept():
    layers = [{"name": "data", "type": "Input", "bottoms": [], "tops": ["data"]},
              {"name": "inception_4e/relu_pool_projection_of_the_last_branch", "type": "ReLU", "bottoms": ["data"],
               "tops": ["inception_4e/pool_projection_of_the_last_branch"]}]
    edges = [{"from": "data", "to": layers[1]["name"], "blob": "data"}]
    shapes = {"data": [1, 3, 8, 8], layers[1]["tops"][0]: [1, 832, 7, 7]}
    lay = gl.layout(layers, edges, shapes, {layers[1]["tops"][0]})
    box = lay["nodes"][1]
    assert gl.MAX_W - 10 <= box["w"] <= gl.MAX_W
    first, blob = box["lines"]
    assert "…" in first["text"] and first["text"].endswith(" · ReLU") and first["text"].startswith("inception_4e")
    assert first["full"] == "inception_4e/relu_pool_projection_of_the_last_branch (ReLU)"
    assert blob["text"].endswith(" 832×7×7") and blob["blob"] == layers[1]["tops"][0] and blob["dreamable"]


def test_the_old_drawing_put_skip_edges_through_boxes():
    """The layout this replaces (rows by rank, boxes left to right, straight edges centre to centre) drew
    GoogLeNet's branch edges across other boxes: the test above would have failed on it."""
    proto, size, _ = NETS["bvlc_googlenet"]
    g = graph_json(convert.load_net(shared_or_skip(proto)), SimpleNamespace(name="g"), size)
    rank = gl.ranks(g["layers"], g["edges"])
    rows: dict[int, list[str]] = {}
    for layer in g["layers"]:
        rows.setdefault(rank[layer["name"]], []).append(layer["name"])
    pos = {n: {"x": 20 + i * 210, "y": 20 + r * 60, "w": 170, "h": 26} for r, names in rows.items()
           for i, n in enumerate(names)}
    through = sum(any(crosses((pos[e["from"]]["x"] + 85, pos[e["from"]]["y"] + 26), (pos[e["to"]]["x"] + 85,
                                                                                         pos[e["to"]]["y"]), b)
                      for n, b in pos.items() if n not in (e["from"], e["to"])) for e in g["edges"])
    assert through > 0
