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


def default_blob(graph, card, trained: list[str] | None = None) -> str:
    """The blob a fine-tune dreams on by default: the card's default when training changes it (or
    when `trained` is None: everything changes), else THE rule (convert.report.default_dream_blob)
    over the dreamable blobs that training changes, so a frozen base never hides the fine-tune."""
    from zoo.convert.report import default_dream_blob, dreamable_blobs

    names = graph.blob_names
    blob = getattr(card, "default_blob", "") if card is not None else ""
    listed = [b.name for b in getattr(card, "dream_blobs", ()) if b.name in names]
    if trained is None or blob in trained:
        return blob if blob in names else default_dream_blob(listed or dreamable_blobs(graph) or names[-1:])
    candidates = changed_dream_blobs(graph, card, trained)
    if candidates:
        return default_dream_blob(candidates)
    return blob if blob in names else default_dream_blob(listed or dreamable_blobs(graph) or names[-1:])


def changed_dream_blobs(graph, card, trained: list[str]) -> list[str]:
    """The blobs worth dreaming on (the card's list, else the converter's picks) that training changes."""
    from zoo.convert.report import dreamable_blobs

    names = graph.blob_names
    listed = [b.name for b in getattr(card, "dream_blobs", ()) if b.name in names]
    changed = set(trained)
    for pool in (listed, dreamable_blobs(graph, most=len(names))):
        picked = [b for b in pool if b in changed]
        if picked:
            return picked
    return []


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
        # step is in pixel units: the preprocessing's scale turns it into net units ((x-127.5)/128 nets)
        result = dream(net, blob_l2(blob), x, params, bounds=(lo, hi), seed=0, pixel_scale=float(preprocess.scale))
    rgb = preprocess.from_net(result.image[0].detach().cpu().numpy())
    dest.parent.mkdir(parents=True, exist_ok=True)
    from zoo.io import atomic_path

    with atomic_path(dest) as tmp:
        Image.fromarray(np.clip(rgb, 0, 255).round().astype(np.uint8)).save(tmp, format="PNG")
    return dest
