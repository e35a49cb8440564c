"""Reading Caffe's text format, with errors that name the file, line and column."""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from zoo.convert.errors import ConvertError, read_bytes
from zoo.convert.proto import caffe_pb2


def read_prototxt(path: str | Path) -> caffe_pb2.NetParameter:
    path = Path(path)
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConvertError(f"{path}: not a text prototxt (byte {e.start} is not UTF-8)") from None
    return parse_prototxt(text, str(path))


def parse_prototxt(text: str, source: str = "<prototxt>") -> caffe_pb2.NetParameter:
    net = caffe_pb2.NetParameter()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        line, col = getattr(e, "GetLine", lambda: None)(), getattr(e, "GetColumn", lambda: None)()
        msg = str(e)
        # protobuf prefixes "line:col : "; keep only the explanation
        if ":" in msg and msg.split(":", 2)[0].strip().isdigit():
            msg = msg.split(":", 2)[-1].strip()
        where = f"{source}:{line}:{col}" if line is not None else source
        raise ConvertError(f"{where}: {msg}") from None
    except (ValueError, RecursionError) as e:
        raise ConvertError(f"{source}: malformed prototxt ({e})") from None
    return net


def to_text(net: caffe_pb2.NetParameter) -> str:
    return text_format.MessageToString(net)
