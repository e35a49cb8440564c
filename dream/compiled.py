"""The opt-in compiled dream path (`zoo dream --compile`): everything about `torch.compile` lives here.

`CompiledNet` wraps a truncated channels_last net (brain.ChannelsLast) with `torch.compile`
(inductor, on the CPU and on CUDA). Sizes are checked eagerly, as the plain net checks them, and the
compiled function runs only the tensor work (CaffeModule.run): one graph, no breaks. Shapes are
static (`dynamic=False`): each octave size compiles once, and inductor's FX-graph cache and
AOTAutograd cache keep the result on disk under `$ZOO_HOME/cache/compile/<torch version>`, so a
later run with the same net and sizes loads it in seconds instead of compiling for a minute or more.
Nothing is written outside `$ZOO_HOME`. The default (eager) path never imports this module.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from zoo.errors import UserError

SEEN = "seen.txt"  # one line per (net, blobs, device, shape) compiled into this cache: the "first time" note
RECOMPILE_LIMIT = 64  # compiled shapes kept per net (octaves and tile shapes), far above a dream's few


def cache_dir() -> Path:
    """Where compiled nets are kept: `$ZOO_HOME/cache/compile/torch-<version>-<code digest>`.

    The digest covers the torch forwards of zoo's layers (`convert/layers`, `torch_module.py`), so a
    changed layer never meets a kernel compiled from its old code (inductor's keys cover the traced
    graph; this is belt and braces for the LRN's hand-written backward)."""
    from zoo.registry import zoo_home

    return zoo_home() / "cache" / "compile" / f"torch-{torch.__version__}-{_code_digest()}"


def _code_digest() -> str:
    from zoo.convert import torch_module

    root = Path(torch_module.__file__).resolve().parent
    h = hashlib.sha256()
    for f in [root / "torch_module.py", *sorted((root / "layers").glob("*.py"))]:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def enable_cache() -> Path:
    """Point inductor's on-disk caches (FX graphs, AOTAutograd, C++ builds; Triton's on CUDA) into
    cache_dir(), switch them on, and return the folder. Said once per process; idempotent."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--compile: cannot create the compile cache {folder} ({e.strerror or e})") from None
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    os.environ["TRITON_CACHE_DIR"] = str(folder / "triton")
    import torch._dynamo
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    # the LRN's backward is a custom autograd.Function; without this AOTAutograd bypasses its cache
    functorch_config.autograd_cache_allow_custom_autograd_functions = True
    dynamo = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo, name):
            setattr(dynamo, name, max(getattr(dynamo, name), RECOMPILE_LIMIT))
    return folder


def check(device: str) -> None:
    """Refuse --compile where inductor cannot build: one line saying what is missing."""
    if device == "cuda":
        import importlib.util

        if importlib.util.find_spec("triton") is None:
            raise UserError("--compile on cuda needs Triton (pip install triton), which this torch lacks; "
                            "drop --compile")
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        compiler = get_cpp_compiler()
    except Exception as e:  # noqa: BLE001 - inductor raises its own types, or plain ones, by version
        raise UserError("--compile: no C++ compiler found (inductor builds its CPU kernels with one: "
                        f"install g++ or clang, or set CXX); drop --compile to dream without it "
                        f"[{type(e).__name__}]") from None
    if not compiler:
        raise UserError("--compile: no C++ compiler found (install g++ or clang, or set CXX); "
                        "drop --compile to dream without it")


def _key(net_id: str, blobs: Sequence[str], device: str, shape: Sequence[int]) -> str:
    return f"{net_id} {device} {'x'.join(map(str, shape))} {'|'.join(blobs)}"


def _seen() -> set[str]:
    try:
        return set((cache_dir() / SEEN).read_text(encoding="utf-8").splitlines())
    except OSError:
        return set()


def note(net_id: str, blobs: Sequence[str], device: str, shapes: Sequence[Sequence[int]]) -> str | None:
    """The one line to say before a compiled dream whose shapes are not all in the cache yet."""
    new = [s for s in dict.fromkeys(tuple(s) for s in shapes) if _key(net_id, blobs, device, s) not in _seen()]
    if not new:
        return None
    what = f"{len(new)} octave size{'s' * (len(new) != 1)}"
    return (f"compiling the net for {what} (first time only, a minute or more each on a small CPU; "
            f"cached in {cache_dir()})")


class CompiledNet(torch.nn.Module):
    """`net(x, outputs=[...]) -> {blob: tensor}` like the plain net, through `torch.compile`.

    `net` is a brain.ChannelsLast over a CaffeModule. One compiled function per set of outputs; each
    input shape is one static graph (recompiled per octave size, loaded from the disk cache when
    compiled before). Sizes are checked eagerly first, so a size that does not fit fails exactly as
    it does without --compile."""

    def __init__(self, net: torch.nn.Module, net_id: str = "", device: str = "cpu"):
        super().__init__()
        enable_cache()
        self.net, self.net_id, self.device = net, net_id, device
        self._fns: dict[tuple[str, ...], object] = {}
        self._shapes: set[tuple] = set()

    @property
    def graph(self):
        return self.net.graph

    def forward(self, x, outputs=None):
        module = self.net.net  # the CaffeModule
        outs = tuple(outputs) if outputs is not None else tuple(module.graph.outputs)
        env = {module.input_names[0]: x}
        module._check_size(env, outs)
        fn = self._fns.get(outs)
        if fn is None:
            module.plan(outs)  # planned and cached eagerly: the compiled function only looks it up
            with torch.no_grad():  # fills the layers' small caches (LRN bands) outside the trace
                module.run({module.input_names[0]: x.detach().contiguous(memory_format=torch.channels_last)},
                           outs)

            def run(t):
                return module.run({module.input_names[0]: t.contiguous(memory_format=torch.channels_last)}, outs)

            fn = self._fns[outs] = torch.compile(run, dynamic=False)
        try:
            out = fn(x)
        except UserError:
            raise
        except Exception as e:  # inductor's failures (a compiler error, a lowering) in one line
            if type(e).__module__.startswith(("torch._dynamo", "torch._inductor")) or "Compile" in type(e).__name__:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise UserError(f"--compile: torch.compile failed ({first[:300]}); drop --compile") from None
            raise
        key = (outs, tuple(x.shape))
        if key not in self._shapes:
            self._shapes.add(key)
            _remember(_key(self.net_id, outs, self.device, x.shape[-2:]))
        return out


def _remember(line: str) -> None:
    from zoo.io import write_text_atomic

    seen = _seen()
    if line in seen:
        return
    try:
        write_text_atomic(cache_dir() / SEEN, "".join(f"{x}\n" for x in sorted(seen | {line})))
    except OSError:
        from zoo.events import note

        note(f"note: cannot record the compile cache index in {cache_dir()}")
