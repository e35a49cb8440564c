"""From a parsed NetParameter to a Graph: inputs, train-only layers stripped, in-place tops named.

Passes, in order: keep the TEST phase; turn input declarations and data layers into inputs; strip
loss and accuracy layers and every branch that only fed them (GoogLeNet's aux heads), turning the
main loss into a Softmax `prob` when it was SoftmaxWithLoss, as deploy files do; drop what no output
needs; give in-place versions their own names; attach and check the weights.
"""

from __future__ import annotations

import numpy as np
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph, Layer, needed_layers
from zoo.convert.layers import DATA_TYPES, INPUT_TYPES, LOSS_TYPES, NOT_CONVERTED, REGISTRY, SINK_TYPES
from zoo.convert.proto import caffe_pb2
from zoo.convert.weights import Weights, unique_names

TEST = caffe_pb2.TEST


def _rule_matches(rule) -> bool:
    """A NetStateRule against Caffe's deploy state: phase TEST, level 0, no stages."""
    if rule.HasField("phase") and rule.phase != TEST:
        return False
    if rule.HasField("min_level") and rule.min_level > 0:
        return False
    if rule.HasField("max_level") and rule.max_level < 0:
        return False
    return not rule.stage


def in_test_phase(p) -> bool:
    if p.include:
        return any(_rule_matches(r) for r in p.include)
    return not any(_rule_matches(r) for r in p.exclude)


def _shape(dims, what: str, source: str) -> tuple[int, ...]:
    s = tuple(int(d) for d in dims)
    if not s or any(d < 1 for d in s):
        raise ConvertError(f"{source}: {what} has an invalid shape {s}")
    return s


def _declared_inputs(net, source: str) -> dict[str, tuple[int, ...]]:
    inputs: dict[str, tuple[int, ...]] = {}
    if not net.input:
        return inputs
    if net.input_shape:
        if len(net.input_shape) != len(net.input):
            raise ConvertError(f"{source}: {len(net.input)} inputs but {len(net.input_shape)} input_shape entries")
        for name, s in zip(net.input, net.input_shape):
            inputs[name] = _shape(s.dim, f"input {name!r}", source)
    elif net.input_dim:
        if len(net.input_dim) != 4 * len(net.input):
            raise ConvertError(f"{source}: {len(net.input)} inputs need {4 * len(net.input)} input_dim values, "
                               f"got {len(net.input_dim)}")
        for i, name in enumerate(net.input):
            inputs[name] = _shape(net.input_dim[4 * i:4 * i + 4], f"input {name!r}", source)
    else:
        for name in net.input:
            inputs[name] = ()
    return inputs


def _layer_inputs(p, source: str) -> dict[str, tuple[int, ...]]:
    """Shapes declared by an Input or DummyData layer, one per top."""
    if p.type == "Input":
        shapes = [tuple(s.dim) for s in p.input_param.shape]
    else:
        q = p.dummy_data_param
        shapes = [tuple(s.dim) for s in q.shape]
        if not shapes and q.num:
            n = len(p.top)
            pick = (lambda v, i: v[i] if len(v) > 1 else v[0])
            shapes = [(pick(q.num, i), pick(q.channels, i), pick(q.height, i), pick(q.width, i)) for i in range(n)]
    if len(shapes) == 1:
        shapes = shapes * len(p.top)
    if shapes and len(shapes) != len(p.top):
        raise ConvertError(f"{source}: layer {p.name!r} gives {len(shapes)} shapes for {len(p.top)} tops")
    if not shapes:
        return {t: () for t in p.top}
    return {t: _shape(s, f"input {t!r}", source) for t, s in zip(p.top, shapes)}


def _data_input(p, source: str) -> tuple[int, ...]:
    """The input shape a train-time data layer implies, from its crop size; () when unknown."""
    crop = p.transform_param.crop_size if p.HasField("transform_param") else 0
    batch, channels = 1, 3
    for param in ("data_param", "image_data_param", "window_data_param"):
        if p.HasField(param):
            q = getattr(p, param)
            batch = getattr(q, "batch_size", 0) or batch
            crop = crop or getattr(q, "crop_size", 0)
    if p.HasField("image_data_param") and not p.image_data_param.is_color:
        channels = 1
    if p.HasField("memory_data_param"):
        q = p.memory_data_param
        return (q.batch_size or 1, q.channels, q.height, q.width)
    return (batch, channels, crop, crop) if crop else ()


def _loss_weight(p) -> float:
    if p.loss_weight:
        return float(p.loss_weight[0])
    return 1.0 if p.type.endswith("Loss") else 0.0


def build_graph(net: caffe_pb2.NetParameter, source: str = "<net>",
                input_shape: tuple[int, ...] | None = None) -> Graph:
    layers = [p for p in net.layer if in_test_phase(p)]
    inputs = _declared_inputs(net, source)
    dead: set[str] = set()
    body: list[caffe_pb2.LayerParameter] = []
    for p in layers:
        if p.type in INPUT_TYPES:
            inputs.update(_layer_inputs(p, source))
        elif p.type in DATA_TYPES and not p.bottom:
            if p.top:
                inputs[p.top[0]] = _data_input(p, source)
            dead.update(p.top[1:])
        else:
            body.append(p)
    # a Silence discards the version of each bottom it reads (an in-place layer after it writes a new one)
    silenced: list[tuple[str, caffe_pb2.LayerParameter | None]] = []
    last_writer: dict[str, caffe_pb2.LayerParameter] = {}
    for p in body:
        if p.type in SINK_TYPES:
            silenced.extend((b, last_writer.get(b)) for b in p.bottom)
        last_writer.update((t, p) for t in p.top)
    body = [p for p in body if p.type not in SINK_TYPES]
    _report_unsupported(body, source)
    if not inputs:
        raise ConvertError(f"{source}: the net declares no input (input:, an Input layer or a data layer)")
    if input_shape is not None:
        first = next(iter(inputs))
        inputs[first] = _shape(input_shape, f"input {first!r}", "--input-shape")
    for name, s in inputs.items():
        if not s:
            raise ConvertError(f"{source}: input {name!r} has no shape; give one with --input-shape N,C,H,W")
    _check_arity(body, source)
    body, (main, excluded) = _strip_losses(body, dead)
    return _finish(net.name or "net", inputs, body, main, excluded, source, silenced)


def _problem(p) -> str | None:
    """Why a layer cannot be converted, or None. Python layers run foreign code: never converted."""
    if not p.type:
        return "no type"
    if p.type == "Python":
        q = p.python_param
        return f"Python layer {q.module}.{q.layer}: runs Python code, not convertible"
    if p.type in NOT_CONVERTED:
        return f"{p.type}: {NOT_CONVERTED[p.type]}"
    if p.type not in REGISTRY and p.type not in LOSS_TYPES:
        return p.type
    if p.zoo_unknown and p.type not in LOSS_TYPES:
        fields = "; ".join(f"`{u}`" for u in p.zoo_unknown[:3]) + (" ..." if len(p.zoo_unknown) > 3 else "")
        return f"{p.type} with fields zoo does not know: {fields}"
    return None


def _report_unsupported(body, source: str) -> None:
    """Every layer that cannot be converted, named with its type, in one message."""
    bad = [(p, why) for p in body if (why := _problem(p))]
    if bad:
        listed = ", ".join(f"{p.name} ({why})" for p, why in bad)
        raise ConvertError(f"{source}: unsupported layer{'s' if len(bad) > 1 else ''}: {listed}")


def _check_arity(body, source: str) -> None:
    for p in body:
        if p.type in LOSS_TYPES:
            continue
        lo, hi = REGISTRY[p.type].n_bottoms
        n = len(p.bottom)
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise ConvertError(f"{source}: layer {p.name!r} ({p.type}) needs {want} bottom"
                               f"{'s' if want != '1' else ''}, has {n}")
        if not p.top:
            raise ConvertError(f"{source}: layer {p.name!r} ({p.type}) has no top")


def _strip_losses(body, dead: set[str]):
    losses = [p for p in body if p.type in LOSS_TYPES or (p.loss_weight and _loss_weight(p) > 0)]
    kept = [p for p in body if p not in losses]
    main_w = max((_loss_weight(p) for p in losses), default=0.0)
    produced = {t for p in kept for t in p.top}
    main: list[str] = []
    extra: list[caffe_pb2.LayerParameter] = []
    for p in losses:
        if main_w > 0 and _loss_weight(p) == main_w and p.bottom and p.bottom[0] in produced:
            blob = p.bottom[0]
            if p.type == "SoftmaxWithLoss":
                prob = "prob" if "prob" not in produced else f"{blob}/prob"
                extra.append(caffe_pb2.LayerParameter(name=prob, type="Softmax", bottom=[blob], top=[prob]))
                produced.add(prob)
                main.append(prob)
            else:
                main.append(blob)
    kept += extra
    excluded = ({b for p in losses for b in p.bottom} | dead) - set(main)
    return kept, (main, excluded)


def _finish(name, inputs, body, main: list[str], excluded: set[str], source,
            silenced: list[tuple[str, caffe_pb2.LayerParameter | None]] = ()) -> Graph:
    """The Graph of the kept layers, in passes: name each blob version, make the layers, choose the
    outputs, note renamed layers, and drop what no output needs."""
    writers = _writers(inputs, body)
    unique = unique_names([p.name for p in body])
    layers, version = _layers(body, inputs, writers, unique, source)
    renamed_inputs = {_input_name(n, writers): s for n, s in inputs.items()}
    silenced_now = {version.get((id(w), b)) if w is not None else _input_name(b, writers) for b, w in silenced}
    outputs, kept_silenced = _outputs(layers, main, excluded, silenced_now)
    g = Graph(name, renamed_inputs, layers, outputs, source)
    _note_changes(g, body, unique, kept_silenced, source)
    if not outputs:
        raise ConvertError(f"{source}: the net has no output")
    keep = needed_layers(g, outputs)
    g.layers = [layer for i, layer in enumerate(g.layers) if i in keep]
    return g


def _writers(inputs, body) -> dict[str, list[int]]:
    """Blob name -> the indices of the layers that write it (-1: the net's input), in order."""
    writers: dict[str, list[int]] = {}
    for i, p in enumerate(body):
        for t in p.top:
            writers.setdefault(t, []).append(i)
    for n in inputs:
        if n in writers:
            writers[n].insert(0, -1)
    return writers


def _input_name(n: str, writers: dict[str, list[int]]) -> str:
    """An input that an in-place layer overwrites is `name@input`."""
    return n if n not in writers else f"{n}@input"


def _layers(body, inputs, writers, unique: list[str], source) -> tuple[list[Layer], dict[tuple[int, str], str]]:
    """The Graph's layers with in-place versions named: the last writer of a name keeps it, earlier
    ones become name@layer; and (writer, blob name) -> the version that writer made."""
    current = {n: _input_name(n, writers) for n in inputs}
    version: dict[tuple[int, str], str] = {}
    layers: list[Layer] = []
    for i, p in enumerate(body):
        bottoms = []
        for b in p.bottom:
            if b not in current:
                raise ConvertError(f"{source}: layer {p.name!r} reads blob {b!r}, which no earlier layer produces")
            bottoms.append(current[b])
        tops = []
        for t in p.top:
            tops.append(t if writers[t][-1] == i else f"{t}@{p.name}")
            current[t] = tops[-1]
            version[(id(p), t)] = tops[-1]
        proto = caffe_pb2.LayerParameter()
        proto.CopyFrom(p)
        del proto.blobs[:]
        proto.name = unique[i]
        layers.append(Layer(unique[i], p.type, bottoms, tops, proto))
    return layers, version


def _outputs(layers: list[Layer], main: list[str], excluded: set[str], silenced: set) -> tuple[list[str], list[str]]:
    """The net's outputs: blobs nothing reads (not a loss's, not silenced), then the main loss's; and
    the silenced blobs kept as outputs when silencing left none (colorization's class8_ab)."""
    consumed = {b for layer in layers for b in layer.bottoms}
    outputs = [t for layer in layers for t in layer.tops
               if t not in consumed and t.split("@", 1)[0] not in excluded and t not in main and t not in silenced]
    outputs += main
    kept: list[str] = []
    if not outputs:
        kept = [t for layer in layers for t in layer.tops if t in silenced]
        outputs = kept
    return outputs, kept


def _note_changes(g: Graph, body, unique: list[str], kept_silenced: list[str], source) -> None:
    """Say what the reading changed: silenced blobs kept as outputs, duplicate layer names renamed."""
    if kept_silenced:
        g.notes.append(f"{source}: every output is silenced (Silence); kept {', '.join(kept_silenced)} as "
                       f"output{'s' if len(kept_silenced) > 1 else ''}")
    renamed = sorted({p.name for p, u in zip(body, unique) if u != p.name})
    if renamed:
        g.notes.append(f"{source}: duplicate layer name{'s' if len(renamed) > 1 else ''} {', '.join(renamed)}: "
                       f"later ones renamed {', '.join(u for p, u in zip(body, unique) if u != p.name)}")


def attach_weights(g: Graph, weights: Weights, source: str) -> Graph:
    """Put each layer's blobs in place, checking count and shape against the prototxt."""
    missing = [layer.name for layer in g.layers if layer.blob_names and layer.name not in weights]
    if missing:
        raise ConvertError(f"{source}: no weights for layer{'s' if len(missing) > 1 else ''} "
                           f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    shapes = g.shapes()
    for layer in g.layers:
        names = layer.blob_names
        if not names:
            continue
        blobs = weights[layer.name]
        if len(blobs) < len(names):
            raise ConvertError(f"{source}: layer {layer.name!r} has {len(blobs)} weight blobs, needs {len(names)}")
        expected = layer.op.weight_shapes(layer.attrs, [shapes[b] for b in layer.bottoms])
        fixed = []
        for i, (blob, want) in enumerate(zip(blobs, expected)):
            if tuple(blob.shape) != tuple(want):
                legacy = getattr(blob, "legacy", False)
                if blob.size == int(np.prod(want)) and (legacy or _squeezes_to(blob.shape, want)):
                    blob = blob.reshape(want)
                else:
                    raise ConvertError(f"{source}: layer {layer.name!r} blob {i} ({names[i]}) has shape "
                                       f"{tuple(blob.shape)}, the prototxt needs {tuple(want)}")
            fixed.append(np.asarray(blob, dtype=np.float32))
        layer.blobs = fixed
    return g


def _squeezes_to(have, want) -> bool:
    return [d for d in have if d != 1] == [d for d in want if d != 1]
