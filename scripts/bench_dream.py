"""Benchmark `zoo dream` on the bvlc_googlenet topology (seeded random weights: the real ones cannot be
fetched here; the speed and memory are the same).

Prints, at 512x512 on inception_4c/output:
  0. how close to the hardware a bare forward+backward runs: GFLOP/s from our own count (2 FLOPs per
     multiply-add of every convolution and inner product, forward, and again for the gradient to
     their input; the weights get no gradient) against this CPU's peak, measured (a large sgemm) and
     nominal (cores x cpu MHz x 64 FP32 FLOPs per cycle with AVX-512: two 16-wide FMA units), for
     fp32 NCHW, fp32 channels_last (the default) and the opt-in bf16 autocast, with each
     mode's look against fp32 on a short dream: activation gain (objective after / before) and SSIM;
     with --compiled also the opt-in torch.compile path, and its first-compile and warm-cache costs;
     on a machine with CUDA also [0g]: img/s and the share of the GPU's measured matmul peak, fp32
     and the CUDA default (bf16 autocast, cudnn.benchmark, channels_last), each with its look;
  1. seconds per dream step and its ratio to a bare forward+backward of the truncated net (target <= 1.10);
  2. the whole classic run (4 octaves x 10 steps; building the net, reading the photo and writing
     the PNG with its recipe included) against the sum of its bare steps (target <= 1.25);
and, in a child process so its peak memory is its own:
  3. a tiled 5400x5400 dream, one octave, one step: wall time and peak resident memory (target < 3 GB).

and (issue 14, efficientnet_lite0's real weights):
  4. video frames per second at 512x512 with and without flow, and the flow's share of a frame;
  5. the gradient exchange's share of a tiled step with 2 processes (torchrun, gloo).

and with --audio only (issue 23, efficientnet_lite0, `zoo dream`'s sound defaults):
  7. seconds of sound dreamt per second of compute (goal: above 1, faster than real time), on 20 s of
     44.1 kHz stereo (freedesktop's theme sounds in a row, or tones where the theme is not installed).
     The defaults before 2026-12-07 (--picture-scale 1) and now, side by side.
  8. with --audio-minutes M (default 10) also: peak resident memory of a child dreaming M minutes of
     44.1 kHz stereo at the sound defaults but one step an octave (target < 2 GB; the chunks bound it,
     not the steps).

and (issue 26, `--channels`): channel pictures per minute for `zoo atlas --channels`, batched (one
batch row per channel) against one channel at a time, on efficientnet_lite0's block7/output at 128 px.

    python scripts/bench_dream.py [--reps 5] [--print-size 5400] [--skip-tiled] [--video | --skip-video]
                                  [--only-gflops] [--compiled] [--channels [--channel-steps 8]]
                                  [--audio [--audio-minutes M] [--audio-seconds S]]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PROTOTXT = ROOT.parent / "shared" / "models" / "bvlc_googlenet" / "deploy.prototxt"
BLOB = "inception_4c/output"


def build_brain():
    from zoo.dream.brain import from_graph

    from zoo import convert
    from zoo.preprocess import Preprocess

    graph = convert.random_weights(convert.load_net(PROTOTXT), seed=0)
    return from_graph("bvlc_googlenet", graph, Preprocess(mean=(104.0, 117.0, 123.0)), default_blob=BLOB)


def photo(side: int) -> np.ndarray:
    from skimage import data
    from zoo.dream.starts import resize_rgb

    return resize_rgb(np.asarray(data.astronaut(), np.float32), (side, side))


class Clock:
    """Wall and process CPU seconds together: on a shared machine the CPU time is the fairer ratio."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def bare_step(net, x: torch.Tensor) -> tuple[float, float]:
    """One forward to the blob and one backward to the input, nothing else: the floor a step can reach."""
    clock = Clock()
    x = x.detach().requires_grad_(True)
    y = net(x, outputs=[BLOB])[BLOB]
    (0.5 * y.pow(2).sum() / y.shape[1]).backward()
    return clock.read()


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def bare_median(net, x: torch.Tensor, reps: int) -> tuple[float, float]:
    bare_step(net, x)  # warm-up
    return medians([bare_step(net, x) for _ in range(reps)])


def step_ratio(brain, side: int, reps: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median (wall, cpu) seconds of a bare step and of a dream step, measured alternately (fair under load)."""
    from zoo.dream import render
    from zoo.dream.objectives import blob_l2
    from zoo.dream.presets import DreamParams

    net = brain.net_for([BLOB])
    lo, hi = (torch.from_numpy(b) for b in brain.preprocess.bounds())
    x = torch.from_numpy(brain.preprocess.to_net(photo(side)))[None]
    params = DreamParams(octaves=1, iterations=1)
    bare_step(net, x)
    render.dream(net, blob_l2(BLOB), x, params, bounds=(lo, hi))  # warm-up
    bare, dream = [], []
    for i in range(reps):
        bare.append(bare_step(net, x))
        clock = Clock()
        render.dream(net, blob_l2(BLOB), x, params, bounds=(lo, hi), seed=i)
        dream.append(clock.read())
    return medians(bare), medians(dream)


def classic_run(side: int, reps: int) -> tuple[tuple[float, float], tuple[float, float], list[tuple[int, int]]]:
    """(wall, cpu) of a whole classic run, and the sum of its bare steps at each octave's size.

    The bare steps run on the same octave images (the start zoomed down), half before the run and
    half after it, so a change in the machine's load during the run counts on both sides.
    """
    from zoo.dream import pipeline
    from zoo.dream.objectives import blob_l2
    from zoo.dream.output import write_image
    from zoo.dream.presets import get_preset
    from zoo.dream.recipe import Recipe, png_info
    from zoo.dream.starts import load_image

    params = get_preset("classic").params
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "astronaut.png"
        from PIL import Image

        Image.fromarray(photo(side).astype(np.uint8)).save(src)
        floor_before = bare_floor(side, params, reps)
        clock = Clock()
        brain = build_brain()
        rgb = load_image(src)
        objective = blob_l2(BLOB)
        plan = pipeline.plan_for(brain, objective.blobs, params, "cpu")
        out, result = pipeline.dream_rgb(brain, rgb, objective, params, seed=0, plan=plan)
        recipe = Recipe(model=brain.name, weights_sha256=brain.weights_sha256, layers=(BLOB,),
                        params=params.with_(tile=plan.tiles.tile), input=str(src))
        write_image(Path(tmp) / "dream.png", out, png_info(recipe))
        whole = clock.read()
    floor_after = bare_floor(side, params, reps)
    floor = tuple((a + b) / 2 for a, b in zip(floor_before, floor_after))
    return whole, floor, result.octave_sizes  # type: ignore[return-value]


def bare_floor(side: int, params, reps: int) -> tuple[float, float]:
    """Sum over the classic octaves of iterations x a bare step at that size (in a fresh net)."""
    from zoo.dream import geometry, render

    brain = build_brain()
    net = brain.net_for([BLOB])
    x = torch.from_numpy(brain.preprocess.to_net(photo(side)))[None]
    wall = cpu = 0.0
    for size in geometry.octave_sizes(side, side, params.octaves, params.octave_scale):
        w, c = bare_median(net, render.zoom(x, size), reps)
        wall, cpu = wall + params.iterations * w, cpu + params.iterations * c
    return wall, cpu


def tiled_child(side: int) -> None:
    """One octave, one step on a side x side photo, tiles chosen from memory; prints JSON."""
    from zoo.dream import pipeline
    from zoo.dream.objectives import blob_l2
    from zoo.dream.output import write_image
    from zoo.dream.presets import DreamParams

    t0 = time.perf_counter()
    brain = build_brain()
    rgb = photo(side)
    objective = blob_l2(BLOB)
    params = DreamParams(octaves=1, iterations=1)
    plan = pipeline.plan_for(brain, objective.blobs, params, "cpu")
    tiles = plan.tiles.tiles(side, side)
    t1 = time.perf_counter()
    out, _ = pipeline.dream_rgb(brain, rgb, objective, params, seed=0, plan=plan)
    t2 = time.perf_counter()
    del rgb
    with tempfile.TemporaryDirectory() as tmp:
        write_image(Path(tmp) / "print.png", out)
    t3 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"tile": plan.tiles.tile, "margin": plan.tiles.margin, "tiles": len(tiles),
                      "setup_s": t1 - t0, "dream_s": t2 - t1, "write_s": t3 - t2, "wall_s": t3 - t0,
                      "peak_bytes": peak}))


def conv_flops(brain, side: int) -> float:
    """FLOPs of one forward+backward-to-the-input at side x side: 2 x 2 x the multiply-adds the graph
    report counts (convolutions, inner products) in the net truncated at BLOB."""
    from zoo.convert.report import summary

    g = brain.truncated_graph([BLOB])
    first = next(iter(g.inputs))
    macs = sum(r.macs for r in summary(g, {first: (1, 3, side, side)}))
    return 4.0 * macs


def peak_flops(reps: int) -> tuple[float, float, str]:
    """(measured sgemm FLOP/s, nominal FLOP/s, how the nominal was found)."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(max(3, reps)))
    measured = 2 * n ** 3 / best
    mhz, avx512 = 0.0, False
    try:
        text = Path("/proc/cpuinfo").read_text()
        mhz = max(float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz"))
        avx512 = " avx512f" in text
    except (OSError, ValueError):
        pass
    per_cycle = 64 if avx512 else 32
    cores = torch.get_num_threads()
    nominal = cores * mhz * 1e6 * per_cycle
    return measured, nominal, f"{cores} cores x {mhz:.0f} MHz x {per_cycle} FLOP/cycle"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


COMPILED = "fp32 compiled (--compile)"


def _modes(brain, compiled: bool = False):
    """name -> (net, autocast): the NCHW net as it was, the default channels_last one, bf16 on it, and
    with `compiled` the opt-in torch.compile path (zoo.dream.compiled)."""
    from zoo.convert.torch_module import CaffeModule
    from zoo.dream.brain import freeze

    cl = brain.net_for([BLOB])
    plain = freeze(CaffeModule(brain.graph.truncated([BLOB])))
    modes = {"fp32 NCHW": (plain, False), "fp32 channels_last (default)": (cl, False),
             "bf16 autocast (opt-in)": (cl, True)}
    if compiled:
        modes[COMPILED] = (brain.net_for([BLOB], compile=True), False)
    return modes


def compile_costs(side: int) -> tuple[float, float]:
    """(first compile, load from a warm on-disk cache) in seconds for one side x side forward+backward,
    each in a fresh process on $ZOO_HOME (main() makes it a new temporary one): what a user pays once,
    and then on every later run. This process then finds the cache warm."""
    times = []
    for _ in range(2):
        res = subprocess.run([sys.executable, __file__, "--child-compile", str(side)], capture_output=True,
                             text=True, check=True)
        times.append(json.loads(res.stdout.strip().splitlines()[-1])["first_call_s"])
    return times[0], times[1]


def compile_child(side: int) -> None:
    """The first compiled forward+backward of a fresh process, timed (cold or warm cache: the caller's)."""
    brain = build_brain()
    net = brain.net_for([BLOB], compile=True)
    x = torch.from_numpy(brain.preprocess.to_net(photo(side)))[None]
    wall, _ = _fwd_bwd(net, x, False)
    print(json.dumps({"first_call_s": wall}))


def _fwd_bwd(net, x: torch.Tensor, autocast: bool) -> tuple[float, float]:
    from zoo.dream import render
    from zoo.dream.objectives import blob_l2

    clock = Clock()
    render.objective_gradient(net, blob_l2(BLOB), x, autocast=autocast)
    return clock.read()


def _look(brain, net, autocast: bool, side: int, steps: int, device: str = "cpu") -> tuple[float, np.ndarray]:
    """Activation gain (fp32 objective after / before) of a one-octave dream, and its RGB result."""
    from zoo.dream import pipeline, render
    from zoo.dream.objectives import blob_l2
    from zoo.dream.presets import DreamParams

    obj = blob_l2(BLOB)
    x = pipeline.to_net(brain.preprocess, photo(side)).to(device)
    lo, hi = (torch.from_numpy(b).to(device) for b in brain.preprocess.bounds())
    params = DreamParams(octaves=1, iterations=steps)
    out = render.dream(net, obj, x, params, bounds=(lo, hi), seed=0, autocast=autocast).image
    ref = brain.net_for([BLOB], device)
    with torch.no_grad():
        before = float(obj(ref(x, outputs=[BLOB])))
        after = float(obj(ref(out, outputs=[BLOB])))
    return after / before, pipeline.from_net(brain.preprocess, out[0].float().cpu())


def hardware_report(brain, side: int, reps: int, look_side: int, look_steps: int, compiled: bool = False) -> None:
    from skimage.metrics import structural_similarity

    flops = conv_flops(brain, side)
    measured, nominal, how = peak_flops(reps)
    print(f"[0] {side}x{side} forward+backward to {BLOB}: {flops / 1e9:.1f} GFLOP (own count); peak: sgemm "
          f"{measured / 1e9:.0f} GFLOP/s measured, {nominal / 1e9:.0f} GFLOP/s nominal ({how})")
    if compiled:
        first, warm = compile_costs(side)
        print(f"    {COMPILED}: first compile {first:.1f} s, from the warm disk cache {warm:.1f} s "
              f"(first forward+backward of a fresh process, {side}x{side}; each octave size is one compile)")
    x = torch.from_numpy(brain.preprocess.to_net(photo(side)))[None]
    modes = _modes(brain, compiled)
    for net, ac in modes.values():
        _fwd_bwd(net, x, ac)  # warm-up (oneDNN primitives, band caches; the compile itself)
    samples: dict[str, list[tuple[float, float]]] = {k: [] for k in modes}
    for _ in range(reps):  # alternated, so a change in load hits every mode
        for name, (net, ac) in modes.items():
            samples[name].append(_fwd_bwd(net, x, ac))
    cores = torch.get_num_threads()
    ref_gain, ref_rgb = None, None
    for name, (net, ac) in modes.items():
        wall, cpu = medians(samples[name])
        gain, rgb = _look(brain, net, ac, look_side, look_steps)
        if ref_rgb is None:  # the look as it was: fp32 NCHW
            ref_gain, ref_rgb = gain, rgb
        ssim = structural_similarity(ref_rgb, rgb, channel_axis=2, data_range=255.0)
        # per CPU-second: on a shared machine the wall clock counts other people's work too
        per_core = flops / cpu
        print(f"    {name:29s} {wall:.3f} s wall, {cpu:.3f} s cpu (medians): {flops / wall / 1e9:5.1f} GFLOP/s wall "
              f"= {100 * flops / wall / nominal:.0f} % of peak; {cores * per_core / 1e9:5.1f} GFLOP/s per "
              f"{cores} CPU-seconds = {100 * per_core / (nominal / cores):.0f} % of peak, "
              f"{100 * per_core * cores / measured:.0f} % of sgemm")
        print(f"    {'':29s} look ({look_side}x{look_side}, {look_steps} steps): activation gain {gain:.3f} "
              f"({100 * (gain / ref_gain - 1):+.1f} % vs fp32 NCHW), SSIM vs fp32 NCHW {ssim:.4f}")


def gpu_report(brain, side: int, reps: int, look_side: int, look_steps: int) -> None:
    """[0g] on a CUDA machine: img/s of the 512x512 forward+backward, GFLOP/s against this GPU's peak
    as measured by large matmuls (fp32 and bf16), for fp32 channels_last and the CUDA default (bf16
    autocast, cudnn.benchmark, channels_last), with the look of each against fp32 (gain and SSIM)."""
    from skimage.metrics import structural_similarity
    from zoo.dream import render
    from zoo.dream.objectives import blob_l2

    torch.backends.cudnn.benchmark = True  # as the dream's CUDA path sets it
    dev = torch.device("cuda")
    flops = conv_flops(brain, side)
    n = 8192
    peaks = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        torch.mm(a, b)
        torch.cuda.synchronize()
        best = min(_cuda_timed(lambda a=a, b=b: torch.mm(a, b)) for _ in range(max(3, reps)))
        peaks[dtype] = 2 * n ** 3 / best
    print(f"[0g] {torch.cuda.get_device_name(0)}: {side}x{side} forward+backward, {flops / 1e9:.1f} GFLOP; measured "
          f"matmul peak {peaks[torch.float32] / 1e12:.1f} TFLOP/s fp32 (TF32 off), "
          f"{peaks[torch.bfloat16] / 1e12:.1f} TFLOP/s bf16")
    net = brain.net_for([BLOB], "cuda")
    x = torch.from_numpy(brain.preprocess.to_net(photo(side)))[None].to(dev)
    obj = blob_l2(BLOB)
    modes = {"fp32 channels_last": (False, torch.float32), "bf16 autocast (CUDA default)": (True, torch.bfloat16)}
    ref_gain, ref_rgb = None, None
    for name, (ac, dtype) in modes.items():
        for _ in range(3):
            render.objective_gradient(net, obj, x, autocast=ac)  # warm-up: cudnn.benchmark picks its kernels
        wall = statistics.median(_cuda_timed(lambda ac=ac: render.objective_gradient(net, obj, x, autocast=ac))
                                 for _ in range(max(5, reps)))
        gain, rgb = _look(brain, net, ac, look_side, look_steps, device="cuda")
        if ref_rgb is None:
            ref_gain, ref_rgb = gain, rgb
        ssim = structural_similarity(ref_rgb, rgb, channel_axis=2, data_range=255.0)
        print(f"    {name:29s} {wall * 1e3:.1f} ms = {1 / wall:.1f} img/s, {flops / wall / 1e12:.2f} TFLOP/s = "
              f"{100 * flops / wall / peaks[dtype]:.0f} % of the {'bf16' if ac else 'fp32'} matmul peak; look "
              f"({look_side}x{look_side}, {look_steps} steps): gain {gain:.3f} ({100 * (gain / ref_gain - 1):+.1f} %), "
              f"SSIM vs fp32 {ssim:.4f}")


def _cuda_timed(fn) -> float:
    torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t


# --- video (issue 14): frames per second with and without flow, and the all-reduce's share ------------


def video_section(side: int, frames: int) -> None:
    """[4] frames/s of a side x side pan clip on efficientnet_lite0 with flow, without, and flow's share;
    [5] the all-reduce's share of a tiled step with 2 ranks (torchrun, gloo)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from video_helpers import make_clip
    from zoo.dream import flow, video, video_run
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe

    params = DreamParams(octaves=3, iterations=6)
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "pan.mp4", n=frames, side=side)
        rec = Recipe(model="efficientnet_lite0", weights_sha256="", layers=("block10/output",), params=params,
                     input=str(clip))
        rows = {}
        for name, opts in (("flow", video.VideoOptions()), ("flow, all steps", video.VideoOptions(
                frame_iterations=params.iterations)), ("no flow", video.VideoOptions(flow="none"))):
            t0 = time.perf_counter()
            video_run.run_clip(rec, clip, Path(tmp) / f"{len(rows)}.mp4", opts)
            rows[name] = frames / (time.perf_counter() - t0)
        src = [f for f in video.read_frames(video.open_clip(clip))][:2]
        a, b = (f.astype(np.float32) for f in src)
        t0 = time.perf_counter()
        for _ in range(3):
            back, fwd = flow.flow(b, a), flow.flow(a, b)
            flow.carry(b, a, a, back, fwd, 0.8)
        flow_s = (time.perf_counter() - t0) / 3
    later = video.VideoOptions().later_iterations(params.iterations)
    steps = f"{params.octaves} octaves x {params.iterations} steps, later frames {later}"
    print(f"[4] {side}x{side} clip, {frames} frames, efficientnet_lite0 block10/output, {steps} (start-up included): "
          + ", ".join(f"{k} {v:.3f} frames/s" for k, v in rows.items())
          + f"; DIS flow both ways + carry {flow_s:.3f} s = {flow_s * rows['flow, all steps']:.1%} of a frame "
          f"with all steps, {flow_s * rows['flow']:.1%} with the default later steps")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__,
           "--child-allreduce"]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    r = json.loads([ln for ln in res.stdout.splitlines() if ln.startswith("{")][-1])
    print(f"[5] 2 ranks (gloo), {r['side']}x{r['side']}, {r['tiles']} tiles of {r['tile']}, {r['steps']} steps: "
          f"{r['step_s']:.3f} s per step, gradient exchange (all-gathers of tile gradients, waiting for the other rank "
          f"included) {r['reduce_s']:.3f} s "
          f"= {r['reduce_s'] / r['step_s']:.1%} of a step")


def allreduce_child(side: int = 1024, steps: int = 3) -> None:
    """Under torchrun: a tiled still dream with shared tiles; rank 0 prints JSON."""
    from zoo.dream import distributed, pipeline
    from zoo.dream.brain import load_brain
    from zoo.dream.objectives import blob_l2
    from zoo.dream.presets import DreamParams

    ranks = distributed.setup("cpu", share_tiles=True)
    brain = load_brain("efficientnet_lite0")
    params = DreamParams(octaves=1, iterations=steps, tile=512)
    objective = blob_l2("block10/output")
    plan = pipeline.plan_for(brain, objective.blobs, params, "cpu")
    rgb = photo(side)
    pipeline.dream_rgb(brain, rgb, objective, params.with_(iterations=1), plan=plan)  # warm-up
    distributed.barrier()
    r0 = distributed.exchange_seconds()
    t0 = time.perf_counter()
    pipeline.dream_rgb(brain, rgb, objective, params, plan=plan)
    wall = time.perf_counter() - t0
    if ranks.master:
        print(json.dumps({"side": side, "tile": plan.tiles.tile, "tiles": len(plan.tiles.tiles(side, side)),
                          "steps": steps, "step_s": wall / steps,
                          "reduce_s": (distributed.exchange_seconds() - r0) / steps}))
    distributed.teardown()


def sound_track(path: Path, seconds: float, rate: int = 44100) -> Path:
    """A stereo track: freedesktop's theme sounds one after another (tones if the theme is missing)."""
    from zoo.dream import audio_io

    theme = sorted(Path("/usr/share/sounds/freedesktop/stereo").glob("*.oga"))
    parts = [audio_io.read(audio_io.probe(p), rate)[:2] for p in theme]
    parts = [np.vstack([p, p]) if p.shape[0] == 1 else p for p in parts]
    if not parts:
        t = np.arange(rate * 3) / rate
        parts = [np.vstack([np.sin(2 * np.pi * f * t), np.sin(2 * np.pi * f * 1.5 * t)]) * 0.3 for f in (220, 330, 440)]
    n = int(seconds * rate)
    reps = -(-n // sum(p.shape[1] for p in parts))
    x = np.concatenate(parts * reps, axis=1)[:, :n].astype(np.float32)
    audio_io.write(path, x, rate)
    return path


def own_peak() -> int:
    """This process's peak resident bytes: VmHWM (ru_maxrss may carry the parent's across fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def audio_child(spec: str) -> None:
    """Dream a track in this process and print wall, CPU and peak memory as JSON."""
    from zoo.dream import audio_run, run

    source, extra = spec.split("|")
    params = json.loads(extra)
    layers = params.pop("layers", ())
    opts = audio_run.SoundOptions(**params.pop("sound", {}))
    rec = run.new_recipe(params={**audio_run.SOUND_PARAMS.to_dict(), **params}, input_path=source, layers=layers)
    t0, c0 = time.perf_counter(), time.process_time()
    result = audio_run.run_sound(rec, Path(source), Path(source).with_name("dreamt.wav"), opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_bytes": own_peak(),
                      "seconds": result.job.samples / result.job.rate, "chunks": result.chunks,
                      "model": result.job.recipe.model}))


BEFORE = {"picture_scale": 1.0}  # [7]: the sound defaults before 2026-12-07 (the spectrogram dreamt at full size)


def _child(src: Path, extra: dict) -> dict:
    res = subprocess.run([sys.executable, __file__, "--child-audio", f"{src}|{json.dumps(extra)}"], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _timed_section(tmp: Path, seconds: float) -> None:
    """[7] the defaults before and now, one after the other on the same track and machine."""
    src = sound_track(tmp / "track.wav", seconds)
    rates = {}
    for label, extra in (("before (--picture-scale 1)", {"sound": BEFORE}), ("now", {})):
        r = _child(src, extra)
        rates[label] = (r["seconds"] / r["wall_s"], r["seconds"] / r["cpu_s"])
        print(f"[7] {r['seconds']:.0f} s of 44.1 kHz stereo on {r['model']} at the sound defaults {label} "
              f"({audio_run_defaults(**extra.get('sound', {}))}): {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s cpu; "
              f"{rates[label][0]:.3f} s of sound per second, {rates[label][1]:.3f} per CPU second (goal: above 1 per "
              f"second on 2 cores), peak memory {r['peak_bytes'] / 2**30:.2f} GiB", flush=True)
    (w0, c0), (w1, c1) = rates.values()
    print(f"[7] now / before: {w1 / w0:.2f}x wall, {c1 / c0:.2f}x CPU")


def audio_section(minutes: float, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_audio_") as tmp:
        if seconds > 0:
            _timed_section(Path(tmp), seconds)
        if minutes > 0:  # the defaults' geometry, brain, blob and octaves, one step an octave (memory: not the steps)
            r = _child(sound_track(Path(tmp) / "long.wav", minutes * 60), {"iterations": 1})
            print(f"[8] {r['seconds'] / 60:.1f} min of 44.1 kHz stereo, {r['chunks']} chunks, the sound defaults but "
                  f"1 step an octave ({audio_run_defaults()}): {r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s cpu, "
                  f"peak memory {r['peak_bytes'] / 2**30:.2f} GiB (target < 2 GB)")


def audio_run_defaults(**sound) -> str:
    from zoo.dream import audio_run

    p, o = audio_run.SOUND_PARAMS, audio_run.SoundOptions(**sound)
    return (f"{p.octaves} octaves x {p.iterations} steps, n_fft {o.n_fft}, hop {o.hop}, picture scale "
            f"{o.picture_scale:g}, {o.chunk:g} s chunks, {o.phase} phase")


def channels_section(side: int = 128, steps: int = 8, count: int = 16, blob: str = "block7/output") -> None:
    """[6] Channels per minute, batched vs one at a time (wall and CPU time, the same steps each)."""
    from zoo.dream import channels
    from zoo.dream.brain import load_brain

    brain = load_brain("efficientnet_lite0")
    settings = channels.SETTINGS.with_(steps=steps)
    with tempfile.TemporaryDirectory(prefix="bench_channels_") as cache:  # build the net and warm it first
        channels.render(brain, blob, Path(cache), size=side, settings=settings.with_(steps=1), batch=count,
                        channels=range(count))
    rates = {}
    for label, batch in ((f"batched {channels.BATCH} a pass", channels.BATCH), ("one at a time", 1)):
        with tempfile.TemporaryDirectory(prefix="bench_channels_") as cache:
            clock = Clock()
            channels.render(brain, blob, Path(cache), size=side, settings=settings, batch=batch,
                            channels=range(count))
            wall, cpu = clock.read()
        rates[label] = (count * 60 / wall, count * 60 / cpu)
        print(f"[6] {blob} at {side} px, {steps} steps, {count} channels {label}: {rates[label][0]:.1f} channels/min "
              f"wall, {rates[label][1]:.1f} per CPU-minute")
    batched, single = rates[f"batched {channels.BATCH} a pass"], rates["one at a time"]
    print(f"[6] batched / one at a time: {batched[0] / single[0]:.2f}x wall, {batched[1] / single[1]:.2f}x CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--print-size", type=int, default=5400)
    ap.add_argument("--skip-tiled", action="store_true")
    ap.add_argument("--only-gflops", action="store_true", help="only [0]")
    ap.add_argument("--look-size", type=int, default=256, help="[0]: side of the short dream for the look")
    ap.add_argument("--look-steps", type=int, default=10)
    ap.add_argument("--child-tiled", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--video", action="store_true", help="only the video section ([4], [5])")
    ap.add_argument("--skip-video", action="store_true")
    ap.add_argument("--video-frames", type=int, default=6)
    ap.add_argument("--child-allreduce", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compiled", action="store_true",
                    help="[0]: add the --compile path, its look and its compile costs (minutes on a small CPU)")
    ap.add_argument("--child-compile", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--audio", action="store_true", help="only the sound section ([7], [8])")
    ap.add_argument("--audio-minutes", type=float, default=10.0, help="[8]: the long track (0: skip [8])")
    ap.add_argument("--audio-seconds", type=float, default=20.0, help="[7]: seconds timed (0: skip)")
    ap.add_argument("--child-audio", type=str, help=argparse.SUPPRESS)
    ap.add_argument("--channels", action="store_true", help="only [6]: channel pictures per minute")
    ap.add_argument("--channel-steps", type=int, default=8)
    args = ap.parse_args()
    if args.child_audio:
        audio_child(args.child_audio)
        return
    if args.audio:
        audio_section(args.audio_minutes, args.audio_seconds)
        return
    if args.channels:
        torch.set_flush_denormal(True)
        channels_section(steps=args.channel_steps)
        return
    if args.child_allreduce:
        allreduce_child()
        return
    if args.child_compile:
        torch.set_flush_denormal(True)
        compile_child(args.child_compile)
        return
    if args.video:
        video_section(args.size, args.video_frames)
        return
    if args.child_tiled:
        torch.set_flush_denormal(True)
        tiled_child(args.child_tiled)
        return
    if args.compiled:  # a cold compile cache of its own, not the user's $ZOO_HOME
        home = tempfile.TemporaryDirectory(prefix="bench_compile_")
        os.environ["ZOO_HOME"] = home.name
    torch.manual_seed(0)
    torch.set_flush_denormal(True)  # as render.dream does on the CPU: the bare steps get the same treatment
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, bvlc_googlenet topology, {BLOB}")

    brain = build_brain()
    hardware_report(brain, args.size, args.reps, args.look_size, args.look_steps, args.compiled)
    if torch.cuda.is_available():
        gpu_report(brain, args.size, args.reps, args.look_size, args.look_steps)
    if args.only_gflops:
        return
    bare, dream = step_ratio(brain, args.size, args.reps)
    print(f"[1] {args.size}x{args.size}: dream step {dream[0]:.3f} s wall / {dream[1]:.3f} s cpu, bare "
          f"forward+backward {bare[0]:.3f} / {bare[1]:.3f} s; ratio {dream[0] / bare[0]:.3f} wall, "
          f"{dream[1] / bare[1]:.3f} cpu (target <= 1.10)")

    whole, floor, sizes = classic_run(args.size, max(3, args.reps // 2))
    octs = ", ".join(f"{w}x{h}" for h, w in sizes)
    print(f"[2] classic run (octaves {octs}; 10 steps each; start-up and saving included): "
          f"{whole[0]:.2f} s wall / {whole[1]:.2f} s cpu; sum of bare steps {floor[0]:.2f} / {floor[1]:.2f} s; "
          f"ratio {whole[0] / floor[0]:.3f} wall, {whole[1] / floor[1]:.3f} cpu (target <= 1.25)")

    if not args.skip_tiled:
        side = args.print_size
        res = subprocess.run([sys.executable, __file__, "--child-tiled", str(side)], capture_output=True,
                             text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"[3] tiled {side}x{side}, 1 octave x 1 step: wall {r['wall_s']:.1f} s (set-up {r['setup_s']:.1f}, "
              f"dream {r['dream_s']:.1f}, PNG {r['write_s']:.1f}), {r['tiles']} tiles of {r['tile']} "
              f"(margin {r['margin']}), peak memory {r['peak_bytes'] / 2**30:.2f} GiB (target < 3 GB)")
    if not args.skip_video:
        video_section(args.size, args.video_frames)


if __name__ == "__main__":
    main()
