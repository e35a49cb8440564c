"""A finished (or stopped) run back into the zoo: the trained weights go into the Graph, the same
emitters write deploy.prototxt + caffemodel (for Caffe tools and OpenCV) and ONNX, and a model card
with the class names and the preprocessing is registered in the user's models.toml
(zoo.register.register_card).

Auxiliary heads and outputs other than the classifier's (MTCNN's box regressors) are dropped: the
exported brain is a plain classifier whose layers keep their names and places.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo import convert
from zoo.errors import UserError
from zoo.io import atomic_folder, make_dirs, write_text_atomic

from . import checkpoint, preview
from .config import TrainConfig
from .model import TrainNet, build, load_source, trained_blobs

PROTOTXT, CAFFEMODEL, ONNX = "deploy.prototxt", "weights.caffemodel", "model.onnx"


@dataclass
class Exported:
    name: str
    folder: Path
    prototxt: Path
    caffemodel: Path
    onnx: Path
    models_toml: Path | None


def restore(run_dir: Path) -> tuple[TrainNet, TrainConfig, list[str], dict]:
    """The trained net of a run, rebuilt from its checkpoint (model, head, weights)."""
    state = checkpoint.load(run_dir)
    cfg = TrainConfig.from_dict(state["config"])
    classes = list(state["classes"])
    source = load_source(cfg.model, init=cfg.init, seed=cfg.seed, weights=cfg.weights, like=cfg.like)
    net = build(source, len(classes), seed=cfg.seed, freeze_to=cfg.freeze_to)
    try:
        net.module.load_state_dict(state["model"])
    except RuntimeError:
        raise checkpoint.CheckpointError(
            f"{run_dir}: checkpoint weights do not fit {cfg.model} with {len(classes)} classes"
        ) from None
    net.module.eval()
    return net, cfg, classes, state


def deploy_graph(net: TrainNet, classes: list[str]):
    """The Graph to export: trained weights, classifier output only, head checked against classes."""
    g = net.module.to_graph()
    head = g.layer(net.classifier)
    n = head.attrs.num_output
    if n != len(classes):
        raise UserError(f"layer {net.classifier!r}: {n} outputs do not fit {len(classes)} class names")
    keep = g.truncated([net.output])
    return keep


def card_table(net: TrainNet, cfg: TrainConfig, classes: list[str], files: dict[str, Path], graph,
               colour_cov: list[list[float]] | None = None) -> dict:
    from zoo.register import local_file

    p = net.preprocess
    src = net.card
    base = getattr(src, "name", cfg.model)
    blobs = set(graph.blob_names)
    dream_blobs = [
        {"name": b.name, "shape": list(b.shape), "produces": b.produces}
        for b in getattr(src, "dream_blobs", ())
        if b.name in blobs
    ]
    trained = trained_blobs(graph, net.frozen)
    default = preview.default_blob(graph, src, trained)
    side = int(round(max(p.input_size) * 256 / 224)) if not cfg.pack_size else cfg.pack_size
    return {
        "title": f"{cfg.name or base}: {base} fine-tuned on {Path(cfg.dataset).name or cfg.dataset}",
        "task": "classify",
        "license": f"weights trained by you with zoo train; started from {base}"
        + (f" ({src.license})" if src is not None and cfg.init == "pretrained" else " (from scratch)"),
        "origin": f"zoo train: {Path(cfg.out).resolve()}",
        "notes": f"{len(classes)} classes from {cfg.dataset}; {cfg.max_iter} iterations of batch {cfg.batch}, "
        f"init {cfg.init}, lr {cfg.base_lr} {cfg.lr_policy}.",
        "input_size": list(p.input_size),
        "channel_order": p.channel_order,
        "scale": float(p.scale),
        "mean": [float(m) for m in p.mean],
        "resize": side,
        "transpose": bool(p.transpose),
        "num_classes": len(classes),
        "output": net.output,
        "classifier": net.classifier,
        "default_blob": default,
        "labels": {"names": list(classes), "source": f"class folders of {cfg.dataset}"},
        "files": {role: local_file(path) for role, path in files.items()},
        "dream_blobs": dream_blobs,
        "trained_blobs": preview.changed_dream_blobs(graph, src, trained),
    } | ({"colour_cov": colour_cov} if colour_cov else {})


def export_run(run_dir: Path, name: str, *, register_card: bool = True) -> Exported:
    """Write the run's brain as zoo model NAME (into the zoo's model cache) and register its card.

    The folder is built beside the old one and swapped in whole (zoo.io.atomic_folder): an export
    that fails half-way leaves the previous export of NAME as it was."""
    from zoo import cache
    from zoo.register import check_new_name, register_card
    from zoo.registry import user_toml

    check_new_name(name)
    net, cfg, classes, state = restore(Path(run_dir))
    cfg.name = name
    graph = deploy_graph(net, classes)
    graph.name = name
    dest = cache.model_dir(name)
    make_dirs(dest.parent)
    with atomic_folder(dest) as tmp:
        convert.write_caffe(graph, tmp / PROTOTXT, tmp / CAFFEMODEL)
        convert.write_onnx(graph, tmp / ONNX)
        write_text_atomic(tmp / "labels.txt", "\n".join(classes) + "\n")
    files = {"prototxt": dest / PROTOTXT, "weights": dest / CAFFEMODEL}
    table = card_table(net, cfg, classes, files, graph, state.get("colour_cov"))
    toml = None
    if register_card:
        register_card(name, table)
        toml = user_toml()
    return Exported(name, dest, files["prototxt"], files["weights"], dest / ONNX, toml)
