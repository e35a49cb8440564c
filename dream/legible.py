"""Which look a recipe gets, and the legible and balanced parts of preparing and running one.

New recipes say `look: auto`: a class target (a channel of a blob with class labels, on any brain
and head) is dreamt with the legible loop (zoo.dream.robust), everything else classically. Several
layers in a new recipe are balanced: each term is divided by its own pull on the start (the mean
absolute gradient it gives the start image), recorded in the recipe so it reproduces. Old recipes
carry neither field and run exactly as they did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from zoo.dream import objectives, pipeline, robust, starts
from zoo.dream.brain import Brain
from zoo.dream.objectives import Objective, Target
from zoo.dream.presets import Legible
from zoo.dream.recipe import Recipe

from zoo.errors import UserError

GUIDE_COLOUR_WEIGHT = 4.0  # the colour (first-blob) layout term over the others: measured 90.7 -> 85.5 vs 86.9 at 1
BALANCE_SIDE = 224  # the start is measured at most this large (the pull's ratio hardly depends on size)


def is_class(brain: Brain, target: Target) -> bool:
    """A channel of a blob that carries class labels (prob:goldfish, fc8:12), not one neuron."""
    return bool(target.channels) and target.position is None and target.blob in brain.labels


def choose(recipe: Recipe, brain: Brain, targets: Sequence[Target],
           shown: Sequence[str] = ()) -> tuple[Recipe, str | None]:
    """The recipe with its look decided (auto -> legible or classic) and, for legible, its settings
    filled in (the colour transform recorded); plus the one line that says so, or None."""
    look = recipe.look
    if look == "auto":
        look = "legible" if targets and all(is_class(brain, t) for t in targets) and not recipe.guide else "classic"
    if look == "classic":
        return recipe.with_(look="classic", legible=None), None
    settings = (recipe.legible or Legible()).for_start(recipe.init == "image")
    if settings.transforms == "auto":
        classes = bool(targets) and all(is_class(brain, t) for t in targets)
        settings = replace(settings, transforms=class_transforms(recipe.init == "image") if classes else "standard")
    if settings.colour is None:
        colour, source = robust.colour_for(brain) if settings.decorrelate else (np.eye(3, dtype=np.float32), "")
        settings = replace(settings, colour=tuple(tuple(round(float(v), 6) for v in row) for row in colour),
                           colour_from=source)
    start = "the photo" if recipe.init == "image" else "noise"
    where = f" ({settings.colour_from}'s)" if settings.colour_from == "ImageNet" else (
        f" (of {settings.colour_from})" if settings.colour_from else "")
    note = (f"legible look for {', '.join(shown or [str(t) for t in targets])}: {settings.steps} steps from {start}, "
            f"{settings.param} picture in {'decorrelated ' if settings.decorrelate else ''}colour{where}, "
            f"{settings.transforms} transforms (--look classic for DeepDream's)")
    return recipe.with_(look="legible", legible=settings), note


def class_transforms(photo: bool) -> str:
    """A class's transforms: from a photo `zoom` (the photo's own object reads at a glance, so the class
    must win on the whole picture seen small), from noise `crops` (nothing competes there, and views
    shrunk to the whole cost the halves their class: daisy's best half 0.53 -> 0.19 by the judge)."""
    return "zoom" if photo else "crops"


def term_objectives(targets: Sequence[Target]) -> list[Objective]:
    return [objectives.target_objective(t) for t in targets]


def pulls(brain: Brain, start: np.ndarray, targets: Sequence[Target], device: str) -> tuple[float, ...]:
    """Each target's pull on the start: the mean absolute gradient of its term at the start image
    (fitted inside BALANCE_SIDE), so terms divided by it pull equally hard."""
    return _pulls_of(brain, start, term_objectives(targets), device)


def _pulls_of(brain: Brain, start: np.ndarray, terms: Sequence[Objective], device: str) -> tuple[float, ...]:
    h, w = start.shape[:2]
    f = min(1.0, BALANCE_SIDE / max(h, w))
    small = starts.resize_rgb(start, (max(1, round(h * f)), max(1, round(w * f))))
    x = pipeline.to_net(brain.preprocess, small).to(device)
    out = []
    for obj in terms:
        net = brain.net_for(list(obj.blobs), device)
        _, grad = _gradient(net, obj, x)
        out.append(max(float(grad.abs().mean()), 1e-30))
    return tuple(out)


def _gradient(net, obj: Objective, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    from zoo.dream.render import objective_gradient

    return objective_gradient(net, obj, x)


def balanced(targets: Sequence[Target], weights: Sequence[float], scales: Sequence[float]) -> Objective:
    """The weighted sum with each term divided by its recorded scale."""
    ws = list(weights) + [1.0] * (len(targets) - len(weights))
    total: Objective | None = None
    for obj, w, s in zip(term_objectives(targets), ws, scales):
        term = (w / s) * obj
        total = term if total is None else total + term
    assert total is not None
    return total


def objective_for(recipe: Recipe, brain: Brain, targets: Sequence[Target], start: np.ndarray,
                  guide: np.ndarray | None, shown: Sequence[str] = ()) -> tuple[Recipe, Objective, str | None]:
    """The recipe with its look (and balance) decided, the objective it dreams, and a line to say."""
    fresh = recipe.look == "auto"  # a new recipe: old ones say nothing of looks and balance
    recipe, note = choose(recipe, brain, targets, shown)
    if recipe.legible is not None and recipe.frames > 1:
        raise UserError("--frames: zoom sequences are dreamt with the classic look; add --look classic")
    if guide is not None:
        recipe = recipe.with_(guide_mode="layout") if fresh else recipe
        recipe, objective = guided(brain, targets, recipe, guide, start)
        return recipe, objective, note
    if fresh and len(targets) > 1 and not recipe.balance:
        recipe = recipe.with_(balance=pulls(brain, start, targets, recipe.device))
    if recipe.balance:
        if len(recipe.balance) != len(targets):
            raise UserError(f"recipe: {len(recipe.balance)} balance scales for {len(targets)} layers")
        objective = balanced(targets, recipe.weights, recipe.balance)
    else:
        objective = objectives.combine(targets, recipe.weights)
    if recipe.legible is not None and recipe.legible.diversity > 1:
        spatial = [t.blob for t in targets if len(brain.dreamable.get(t.blob, ())) == 3]
        objective = objective + diversity_term(brain, spatial, recipe.legible)
    return recipe, objective, note


def diversity_term(brain: Brain, spatial: Sequence[str], settings: Legible) -> Objective:
    """The batch's diversity, measured at the targets' deepest spatial blob (the brain's default
    blob for class targets)."""
    blob = spatial[-1] if spatial else brain.default_blob
    return robust.diversity(blob, settings.diversity_weight)


def dream(brain: Brain, start: np.ndarray | None, objective: Objective, recipe: Recipe, *,
          on_progress=None, on_step=None, size: tuple[int, int] | None = None):
    """Run the legible loop for a prepared recipe: the pictures side by side as one RGB image."""
    assert recipe.legible is not None
    size = size or (start.shape[:2] if start is not None else None)
    net = brain.net_for(list(objective.blobs), recipe.device)
    if brain.input_size is not None and any(brain.is_fixed(b) for b in objective.blobs):
        net = _at_least(net, brain.input_size)
    rgb, result = robust.dream(net, objective, brain.preprocess, tuple(size), recipe.legible, seed=recipe.seed,
                               start=start, on_progress=on_progress, on_step=on_step, device=recipe.device)
    return robust.strip(rgb), result


def _at_least(net, side: tuple[int, int]):
    """A net whose input is first enlarged to cover one window of a fixed-size head (a transformed
    view can come out a few pixels smaller than the picture)."""

    def run(x: torch.Tensor, outputs):
        h, w = x.shape[-2:]
        if h < side[0] or w < side[1]:
            x = torch.nn.functional.interpolate(x, size=(max(h, side[0]), max(w, side[1])), mode="bilinear",
                                                align_corners=False)
        return net(x, outputs=outputs)

    return run


def guided(brain: Brain, targets: Sequence[Target], recipe: Recipe, guide: np.ndarray,
           start: np.ndarray) -> tuple[Recipe, Objective]:
    """The guide's objective: the notebook's best match at each target blob (old recipes), or the
    guide's features in place at each target blob and at the brain's first blob, where colour lives
    (`guide_mode` layout), each layout term divided by its pull on the start so the colours count."""
    blobs = list(dict.fromkeys(t.blob for t in targets))
    if recipe.guide_mode != "layout":
        feats = {b: pipeline.guide_features(brain, guide, b, recipe.device) for b in blobs}
        return recipe, pipeline.build_objective(brain, targets, recipe.weights, guide_blobs=feats)
    first = next(iter(brain.dreamable), blobs[0])
    blobs = list(dict.fromkeys([*blobs, first]))
    terms = [objectives.guide_layout(b, pipeline.guide_features(brain, guide, b, recipe.device)) for b in blobs]
    scales = recipe.balance
    if not scales:  # each term's pull, the colour term's divided by its weight: recorded as one number each
        scales = _pulls_of(brain, start, terms, recipe.device)
        if first not in (t.blob for t in targets):
            scales = (*scales[:-1], scales[-1] / GUIDE_COLOUR_WEIGHT)
    if len(scales) != len(terms):
        raise UserError(f"recipe: {len(scales)} balance scales for {len(terms)} guided blobs")
    return recipe.with_(balance=tuple(scales)), objectives.total(terms, [1.0 / s for s in scales])
