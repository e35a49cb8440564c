"""Reading Caffe's text format, with errors that name the file, line and column.

Forks add fields that BVLC's schema lacks (`pooling_param { ceil_mode: false }`, `norm_param`...).
The reader is tolerant: a field the schema does not know is cut out of the text, kept verbatim in
its layer's `zoo_unknown`, and parsing goes on; the graph builder then handles or reports it.
"""

from __future__ import annotations

import bisect
import contextlib
import re
from pathlib import Path

from google.protobuf import text_format
from zoo.convert.errors import ConvertError, read_bytes
from zoo.convert.proto import caffe_pb2

_UNKNOWN = re.compile(r'Message type "(?:caffe\.)?([\w.]+)" has no field named "([^"]+)"')
_MAX_UNKNOWN = 5000


def read_prototxt(path: str | Path) -> caffe_pb2.NetParameter:
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not a text prototxt (byte {e.start} is not UTF-8)") from None
    return parse_prototxt(text, str(path))


def _error(e: text_format.ParseError, source: str) -> ConvertError:
    line, col = getattr(e, "GetLine", lambda: None)(), getattr(e, "GetColumn", lambda: None)()
    msg = str(e)
    # protobuf prefixes "line:col : "; keep only the explanation
    if ":" in msg and msg.split(":", 2)[0].strip().isdigit():
        msg = msg.split(":", 2)[-1].strip()
    where = f"{source}:{line}:{col}" if line is not None else source
    return ConvertError(f"{where}: {msg}")


def parse_prototxt(text: str, source: str = "<prototxt>") -> caffe_pb2.NetParameter:
    """Parse once: unknown fields are found by one schema-guided pass over the text (_cut_unknown) and
    blanked out first. The re-parse loop below is only a backstop for what that pass leaves to the
    parser (a malformed spot, a list of messages), so a file with thousands of unknown fields is still
    one parse, not one per field."""
    cut = _cut_unknown(text)  # unknown fields (start, end, message), blanked out of `work`
    if len(cut) > _MAX_UNKNOWN:
        raise ConvertError(f"{source}: more than {_MAX_UNKNOWN} fields that Caffe's schema lacks")
    work = _blank(text, cut)
    starts = _line_starts(text)
    while True:
        net = caffe_pb2.NetParameter()
        try:
            text_format.Parse(work, net)
            break
        except text_format.ParseError as e:
            m = _UNKNOWN.search(str(e))
            line, col = e.GetLine(), e.GetColumn()
            if not m or line is None or len(cut) >= _MAX_UNKNOWN:
                raise _error(e, source) from None
            start = starts[line - 1] + col - 1
            end = _field_end(work, start)
            if end is None or not work.startswith(m.group(2), start):
                raise _error(e, source) from None
            cut.append((start, end, m.group(1)))
            work = work[:start] + re.sub(r"[^\n]", " ", work[start:end]) + work[end:]
        except (ValueError, RecursionError) as e:
            raise ConvertError(f"{source}: malformed prototxt ({e})") from None
    if cut:
        _attach_unknown(net, text, sorted(cut))
    return net


def to_text(net: caffe_pb2.NetParameter) -> str:
    return text_format.MessageToString(net)


# -- the small scanner behind the tolerant reader -------------------------------------------------
_WORD = re.compile(r"[A-Za-z_][\w.]*")


def _blank(text: str, cut: list[tuple[int, int, str]]) -> str:
    """The text with each cut span's characters (newlines kept, so lines and columns hold) as spaces."""
    parts, at = [], 0
    for start, end, _ in cut:
        parts += [text[at:start], re.sub(r"[^\n]", " ", text[start:end])]
        at = end
    return "".join([*parts, text[at:]])


def _cut_unknown(text: str) -> list[tuple[int, int, str]]:
    """Every field the schema lacks, in one pass: (start, end, message type), in text order. Stops
    quietly where the text is malformed: the parser then reports that spot with its line and column."""
    cut: list[tuple[int, int, str]] = []
    with contextlib.suppress(ValueError, RecursionError):
        _scan_fields(text, 0, caffe_pb2.NetParameter.DESCRIPTOR, cut, 0)
    return cut


def _scan_fields(t: str, i: int, desc, cut: list, depth: int) -> int:
    """Walk the fields of one message from i until its closing brace (or the end); returns where it stopped."""
    if depth > 64:
        raise ValueError("nested too deeply")
    while True:
        i = _skip_space(t, i)
        m = _WORD.match(t, i)
        if not m:
            return i
        field = desc.fields_by_name.get(m.group())
        end = _field_end(t, i)
        if end is None:
            raise ValueError("malformed field")
        if field is None:
            cut.append((i, end, desc.name))
        elif field.message_type is not None:
            j = _skip_space(t, m.end())
            j = _skip_space(t, j + 1) if t[j] == ":" else j
            if t[j] in "{<":
                close = _skip_space(t, _scan_fields(t, j + 1, field.message_type, cut, depth + 1))
                if close != end - 1:
                    raise ValueError("malformed message")
        i = _skip_space(t, end)
        if i < len(t) and t[i] in ";,":
            i += 1


def _line_starts(text: str) -> list[int]:
    out = [0]
    out.extend(m.end() for m in re.finditer("\n", text))
    return out


def _skip_space(t: str, i: int) -> int:
    n = len(t)
    while i < n:
        if t[i].isspace():
            i += 1
        elif t[i] == "#":
            j = t.find("\n", i)
            i = n if j < 0 else j + 1
        else:
            break
    return i


def _skip_string(t: str, i: int) -> int:
    q, i = t[i], i + 1
    while i < len(t) and t[i] != q:
        i += 2 if t[i] == "\\" else 1
    if i >= len(t):
        raise ValueError("unterminated string")
    return i + 1


def _skip_block(t: str, i: int) -> int:
    """From an opening brace to just past its closing one, strings and comments respected."""
    depth = 0
    while i < len(t):
        c = t[i]
        if c in "\"'":
            i = _skip_string(t, i)
            continue
        if c == "#":
            i = _skip_space(t, i)
            continue
        if c in "{<[":
            depth += 1
        elif c in "}>]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced braces")


def _field_end(t: str, i: int) -> int | None:
    """Where the field starting at i (name, optional ':', value or message) ends; None if unsure."""
    try:
        m = _WORD.match(t, i)
        if not m:
            return None
        j = _skip_space(t, m.end())
        if j < len(t) and t[j] == ":":
            j = _skip_space(t, j + 1)
            if j < len(t) and t[j] in "{<[":
                return _skip_block(t, j)
            if j < len(t) and t[j] in "\"'":
                while j < len(t) and t[j] in "\"'":  # adjacent strings concatenate
                    j = _skip_space(t, _skip_string(t, j))
                return j
            v = re.compile(r"[^\s{}<>\[\];,#]+").match(t, j)
            return v.end() if v else None
        if j < len(t) and t[j] in "{<":
            return _skip_block(t, j)
    except ValueError:
        return None
    return None


def _layer_spans(t: str) -> list[tuple[str, int, int]]:
    """Top-level `layer {...}` / `layers {...}` records in file order: (field, start, end)."""
    spans, i, n = [], 0, len(t)
    word = re.compile(r"[A-Za-z_]\w*")
    while True:
        i = _skip_space(t, i)
        if i >= n:
            return spans
        m = word.match(t, i)
        if not m:
            i = _skip_string(t, i) if t[i] in "\"'" else (_skip_block(t, i) if t[i] in "{<[" else i + 1)
            continue
        end = _field_end(t, i)
        if end is None:
            i = m.end()
            continue
        if m.group() in ("layer", "layers"):
            spans.append((m.group(), i, end))
        i = end


def _attach_unknown(net, text: str, cut: list[tuple[int, int, str]]) -> None:
    """Each cut field goes to the layer whose text holds it; fields outside layers are dropped."""
    try:
        spans = _layer_spans(text)
    except ValueError:
        return
    counters = {"layer": 0, "layers": 0}
    placed = []
    for field, s, e in spans:
        idx = counters[field]
        counters[field] += 1
        placed.append((field, idx, s, e))
    starts = [s for _, _, s, _ in placed]  # layer records do not overlap: the one before `start` holds it
    for start, end, message in cut:
        k = bisect.bisect_right(starts, start) - 1
        if k < 0 or not placed[k][2] <= start < placed[k][3]:
            continue
        field, idx = placed[k][:2]
        records = net.layer if field == "layer" else net.layers
        where = "" if message in ("LayerParameter", "V1LayerParameter") else f"{message} "
        if idx < len(records):
            records[idx].zoo_unknown.append(where + " ".join(text[start:end].split()))
