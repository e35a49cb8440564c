"""Optional: at each checkpoint, a small dream of a fixed start image at the default blob, so the
artist sees the brain change. Used only when dream/ is importable; never touches the training RNG
or gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def available() -> bool:
    try:
        import zoo.dream.objectives  # noqa: F401
        import zoo.dream.render  # noqa: F401
    except ImportError:
        return False
    return True


def start_image(rgb: np.ndarray, min_side: int = 160) -> np.ndarray:
    """The fixed start: a held-out image, enlarged to at least `min_side` so the dream is visible."""
    h, w = rgb.shape[:2]
    if min(h, w) >= min_side:
        return rgb
    f = min_side / min(h, w)
    return np.asarray(Image.fromarray(rgb).resize((round(w * f), round(h * f)), Image.Resampling.BICUBIC))


def default_blob(graph, card) -> str:
    """The card's default blob when this graph has it, else the one default-blob rule's pick."""
    from zoo.convert.report import default_dream_blob

    names = graph.blob_names
    blob = getattr(card, "default_blob", "") if card is not None else ""
    if blob in names:
        return blob
    shapes = graph.shapes()
    spatial = [b for b in names[1:] if len(shapes.get(b, ())) == 4 and shapes[b][2] * shapes[b][3] > 1]
    return default_dream_blob(spatial) if spatial else names[-1]


def render(module: torch.nn.Module, preprocess, start_rgb: np.ndarray, blob: str, dest: Path) -> Path:
    """Dream `start_rgb` (HxWx3 uint8) on `blob` for a few steps and save it as a PNG at `dest`."""
    from zoo.convert.torch_module import CaffeModule
    from zoo.dream.objectives import blob_l2
    from zoo.dream.presets import DreamParams
    from zoo.dream.render import dream

    # A copy of the layers up to the blob, with the current weights: the training module, its
    # gradients and its random state stay untouched, and layers past the blob never limit the size.
    net = CaffeModule(module.to_graph().truncated([blob])).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        dev = next(module.parameters()).device
        net.to(dev)
        x = torch.from_numpy(preprocess.to_net(start_rgb))[None].to(dev)
        lo, hi = (torch.from_numpy(b) for b in preprocess.bounds())
        params = DreamParams(octaves=2, octave_scale=1.4, iterations=6, step=1.5, jitter=4)
        result = dream(net, blob_l2(blob), x, params, bounds=(lo, hi), seed=0)
    rgb = preprocess.from_net(result.image[0].detach().cpu().numpy())
    dest.parent.mkdir(parents=True, exist_ok=True)
    from zoo.io import atomic_path

    with atomic_path(dest) as tmp:
        Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8)).save(tmp, format="PNG")
    return dest
