"""Where the graph view draws each layer and each edge: a pure function of the graph (no browser).

Layers are boxes in rows (a layer sits one row below the lowest layer it reads from); an edge that
skips rows (a residual add, an inception branch, an SSD head) runs down its own lane beside the
boxes instead of across them; a long name is shortened in the middle to fit its box, and the page
keeps the full name as the box's tooltip. The page only draws what this returns, so the rules
(no box over another, no edge through a box, every label inside its box) are tested here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

FONT_PX = 11  # the graph's font size; widths below are DejaVu Sans (the widest usual sans) per 1000 em
_WIDTHS = {275: "'", 278: "ijl", 295: "IJ", 318: " ,.·", 337: "/:;\\|", 352: "f", 361: "-", 390: "()[]", 392: "t",
           401: "!", 411: "r", 460: '"', 500: "*_`", 521: "s", 525: "z", 531: "?", 550: "c", 557: "L", 575: "F",
           579: "k", 592: "vxy", 603: "P", 611: "TY", 612: "o", 613: "a", 615: "e", 632: "E", 634: "hnu",
           635: "Sbdgpq", 636: "$0123456789{}", 656: "K", 684: "AV", 685: "XZ", 686: "B", 695: "R", 698: "C",
           732: "U", 748: "N", 752: "H", 770: "D", 775: "G", 780: "&", 787: "OQ", 818: "w", 838: "#+<=>^~×→",
           863: "M", 950: "%", 974: "m", 989: "W"}
_ADVANCE = {c: w for w, chars in _WIDTHS.items() for c in chars}
SAFETY = 1.04  # rounding and hinting in the browser
PAD_X, PAD_Y, LINE = 6, 4, 14  # inside a box: side padding, top and bottom padding, line height
MIN_W, MAX_W = 96, 240  # a box is as wide as its longest line, within these
GAP_Y = 30  # between rows (where edges bend)
SEP_BOX, SEP_LANE = 26, 14  # least room between two boxes, and beside a lane
MARGIN = 16


def text_width(text: str, px: int = FONT_PX) -> float:
    """Width of `text` in pixels, a little over what DejaVu Sans needs (other fonts need less)."""
    return sum(_ADVANCE.get(c, 1000) for c in text) * px / 1000 * SAFETY


def fit(text: str, budget: float) -> str:
    """`text`, or its start and end around an ellipsis, within `budget` pixels (the end of a layer
    name says which one it is, its start which block)."""
    if text_width(text) <= budget:
        return text
    head, tail = len(text) // 2, len(text) - len(text) // 2
    while head + tail > 0:
        if head >= tail:
            head -= 1
        else:
            tail -= 1
        short = text[:head] + "…" + text[len(text) - tail:]
        if text_width(short) <= budget:
            return short
    return "…"


@dataclass
class Box:
    """One layer: its lines (text shown, full text, the blob a line names if any) and its place."""

    name: str
    type: str
    lines: list[dict]
    w: float
    rank: int = 0
    x: float = 0.0  # centre
    y: float = 0.0  # top
    h: float = 0.0


@dataclass
class Lane:
    """One row of an edge that skips rows: a point it passes, beside that row's boxes."""

    edge: int
    rank: int
    x: float = 0.0


@dataclass
class Plan:
    """The boxes and, row by row, every item that takes room in it (boxes and lanes)."""

    boxes: dict[str, Box]
    rows: list[list[object]] = field(default_factory=list)  # per rank: Box and Lane items, left to right
    lanes: dict[int, list[Lane]] = field(default_factory=dict)  # edge index -> its lanes, top to bottom


def _fit_pair(name: str, suffix: str, budget: float) -> str:
    """`name` shortened so that `name + suffix` fits (the suffix, a type or a shape, stays whole)."""
    room = budget - text_width(suffix)
    return fit(name, room) + suffix if room >= budget / 2 else fit(name + suffix, budget)


def _lines(layer: dict, shapes: dict, dreamable: set[str]) -> list[dict]:
    """A box's text: `name · Type`, then one line per public top with its shape (clickable when
    dreamable); each line as shown (fitted to the widest box) and whole (for the tooltip)."""
    budget = MAX_W - 2 * PAD_X
    name, kind = layer["name"], layer["type"]
    lines = [{"text": _fit_pair(name, f" · {kind}", budget), "full": f"{name} ({kind})"}]
    for top in layer["tops"]:
        if "@" in top:  # the converter's name for a blob that an in-place layer rewrites: not public
            continue
        shape = "×".join(str(d) for d in shapes.get(top, [])[1:])
        lines.append({"text": _fit_pair(top, f" {shape}" if shape else "", budget),
                      "full": f"blob {top} {shape}".strip(), "blob": top, "dreamable": top in dreamable})
    return lines


def ranks(layers: Sequence[dict], edges: Sequence[dict]) -> dict[str, int]:
    """Longest path from the inputs: a layer sits one row below the lowest layer it reads from (layers
    come in prototxt order, where each reads only from earlier ones)."""
    into: dict[str, list[str]] = {}
    for e in edges:
        into.setdefault(e["to"], []).append(e["from"])
    rank: dict[str, int] = {}
    for layer in layers:
        rank[layer["name"]] = 1 + max((rank.get(p, -1) for p in into.get(layer["name"], ())), default=-1)
    return rank


def _plan(boxes: dict[str, Box], edges: Sequence[dict]) -> Plan:
    """Rows of boxes, and a lane in every row that an edge passes without stopping."""
    plan = Plan(boxes, [[] for _ in range(1 + max(b.rank for b in boxes.values()))])
    for b in boxes.values():
        plan.rows[b.rank].append(b)
    for i, e in enumerate(edges):
        plan.lanes[i] = [Lane(i, r) for r in range(boxes[e["from"]].rank + 1, boxes[e["to"]].rank)]
        for lane in plan.lanes[i]:
            plan.rows[lane.rank].append(lane)
    return plan


def _preds(plan: Plan, edges: Sequence[dict]) -> dict[int, list[object]]:
    """For each item (by id), the items one row up that it hangs from."""
    out: dict[int, list[object]] = {}
    for i, e in enumerate(edges):
        chain = [plan.boxes[e["from"]], *plan.lanes[i], plan.boxes[e["to"]]]
        for up, down in zip(chain, chain[1:]):
            out.setdefault(id(down), []).append(up)
    return out


def _desired(item: object, preds: dict[int, list[object]], straight: dict[int, float]) -> float:
    """Where an item would like to be: a lane under what it comes from (or where its edge's lane runs
    straight), a box under the boxes it reads from (lanes only when it reads from lanes alone)."""
    ups = preds.get(id(item), [])
    if isinstance(item, Lane):
        return straight.get(item.edge, ups[0].x if ups else 0.0)  # type: ignore[attr-defined]
    real = [u.x for u in ups if isinstance(u, Box)] or [u.x for u in ups]  # type: ignore[attr-defined]
    return sum(real) / len(real) if real else 0.0


def _isotonic(values: Sequence[float], weights: Sequence[float]) -> list[float]:
    """The non-decreasing sequence closest to `values` (weighted least squares; pool adjacent violators)."""
    blocks: list[list[float]] = []  # mean, weight, count
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, n2 = blocks.pop()
            v1, w1, n1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [v for v, _, n in blocks for _ in range(int(n))]


def _width(item: object) -> float:
    return item.w if isinstance(item, Box) else 0.0


def _place_row(row: list[object], desired: list[float]) -> None:
    """x for each item of a row, in order, at least its gap apart, as near its wish as can be (boxes
    weigh 20 times a lane: the main column stays straight and the lanes step aside)."""
    offsets = [0.0]
    for a, b in zip(row, row[1:]):
        sep = SEP_BOX if isinstance(a, Box) and isinstance(b, Box) else SEP_LANE
        offsets.append(offsets[-1] + (_width(a) + _width(b)) / 2 + sep)
    weights = [1.0 if isinstance(it, Box) else 0.05 for it in row]
    fitted = _isotonic([d - o for d, o in zip(desired, offsets)], weights)
    for item, y, o in zip(row, fitted, offsets):
        item.x = y + o  # type: ignore[attr-defined]


def _order(plan: Plan, preds: dict[int, list[object]]) -> None:
    """Each row sorted under the row above (mean position of what an item hangs from; boxes before
    lanes on a tie, so a skip edge goes beside the column, not through it)."""
    for r in range(1, len(plan.rows)):
        where = {id(it): k for k, it in enumerate(plan.rows[r - 1])}
        keys = []
        for k, it in enumerate(plan.rows[r]):
            ups = [where[id(u)] for u in preds.get(id(it), []) if id(u) in where]
            keys.append((sum(ups) / len(ups) if ups else float(k), isinstance(it, Lane), k))
        plan.rows[r] = [plan.rows[r][k[2]] for k in sorted(keys)]


def _place(plan: Plan, preds: dict[int, list[object]]) -> None:
    """x of every item, row by row from the top; then again with each skip edge's lane as straight as
    its widest row allows."""
    straight: dict[int, float] = {}
    for _ in range(2):
        for row in plan.rows:
            _place_row(row, [_desired(it, preds, straight) for it in row])
        straight = {i: max(lane.x for lane in lanes) for i, lanes in plan.lanes.items() if lanes}
    left = min(it.x - _width(it) / 2 for row in plan.rows for it in row)  # type: ignore[attr-defined]
    for row in plan.rows:
        for it in row:
            it.x += MARGIN - left  # type: ignore[attr-defined]


def _heights(plan: Plan) -> list[tuple[float, float]]:
    """Top and height of each row: every box of a row as tall as the row's tallest, so the space
    between two rows holds no box (edges cross rows only there, or down a lane)."""
    out, y = [], float(MARGIN)
    for row in plan.rows:
        h = max(len(b.lines) for b in row if isinstance(b, Box)) * LINE + 2 * PAD_Y
        out.append((y, float(h)))
        y += h + GAP_Y
    for b in plan.boxes.values():
        b.y, b.h = out[b.rank]
    return out


def _spread(box: Box, toward: Sequence[float]) -> list[float]:
    """Ports along a side of `box` for edges heading toward these x, in the same left-to-right order."""
    slots = sorted(range(len(toward)), key=lambda k: toward[k])
    out = [0.0] * len(toward)
    for slot, k in enumerate(slots):
        out[k] = box.x - box.w / 2 + box.w * (slot + 1) / (len(toward) + 1)
    return out


def _routes(plan: Plan, edges: Sequence[dict], rows: list[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """Each edge as points: out of its layer's bottom, down its lanes (straight through each row it
    passes), into the top of the layer that reads it."""
    mids = {i: [p for ln in plan.lanes[i] for p in ((ln.x, rows[ln.rank][0]), (ln.x, sum(rows[ln.rank])))]
            for i in range(len(edges))}
    out_x: dict[int, float] = {}
    in_x: dict[int, float] = {}
    for end, ports, near in (("from", out_x, lambda i: mids[i][0][0] if mids[i] else plan.boxes[edges[i]["to"]].x),
                             ("to", in_x, lambda i: mids[i][-1][0] if mids[i] else plan.boxes[edges[i]["from"]].x)):
        groups: dict[str, list[int]] = {}
        for i, e in enumerate(edges):
            groups.setdefault(e[end], []).append(i)
        for name, ids in groups.items():
            ports.update(zip(ids, _spread(plan.boxes[name], [near(i) for i in ids])))
    out = []
    for i, e in enumerate(edges):
        src, dst = plan.boxes[e["from"]], plan.boxes[e["to"]]
        out.append([(out_x[i], src.y + src.h), *mids[i], (in_x[i], dst.y)])
    return out


def layout(layers: Sequence[dict], edges: Sequence[dict], shapes: dict, dreamable: set[str]) -> dict:
    """The whole view: boxes (left, top, width, height, lines) and edges (points; `skip` when the edge
    passes rows), from graph_json's layers and edges and the blob shapes."""
    names = {layer["name"] for layer in layers}
    edges = [e for e in edges if e["from"] in names and e["to"] in names]
    rank = ranks(layers, edges)
    boxes: dict[str, Box] = {}
    for layer in layers:
        lines = _lines(layer, shapes, dreamable)
        w = min(MAX_W, max(MIN_W, max(text_width(ln["text"]) for ln in lines) + 2 * PAD_X))
        boxes[layer["name"]] = Box(layer["name"], layer["type"], lines, round(w), rank[layer["name"]])
    if not boxes:
        return {"width": 0, "height": 0, "line": LINE, "pad": [PAD_X, PAD_Y], "nodes": [], "edges": []}
    plan = _plan(boxes, edges)
    preds = _preds(plan, edges)
    _order(plan, preds)
    _place(plan, preds)
    rows = _heights(plan)
    routes = _routes(plan, edges, rows)
    right = max(it.x + _width(it) / 2 for row in plan.rows for it in row)  # type: ignore[attr-defined]
    nodes = [{"name": b.name, "type": b.type, "x": round(b.x - b.w / 2, 1), "y": b.y, "w": b.w, "h": b.h,
              "lines": b.lines} for b in boxes.values()]
    drawn = [{"from": e["from"], "to": e["to"], "blob": e["blob"], "skip": bool(plan.lanes[i]),
              "points": [[round(x, 1), round(y, 1)] for x, y in route]}
             for i, (e, route) in enumerate(zip(edges, routes))]
    return {"width": round(right + MARGIN), "height": round(sum(rows[-1]) + MARGIN), "line": LINE,
            "pad": [PAD_X, PAD_Y], "font_px": FONT_PX, "nodes": nodes, "edges": drawn}
