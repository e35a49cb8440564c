"""Training speed against a bare forward+backward of the same net and batch.

    python scripts/bench_train.py [--model mtcnn_det3 | --model PATH.prototxt --like NAME]
                                  [--dataset ../shared/datasets/lfw_gender] [--batch 32] [--iters 10]

Prints the best of --repeats alternating measurements of images/s of (a) forward+backward+step on
one fixed batch already in memory and (b) `zoo
train` on the dataset (HDF5 pack, augmentation in DataLoader workers, lr schedule, accumulation),
both measured on steady-state iterations, and the share of time the data pipeline costs
(target: under 10 %).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from zoo.train.config import TrainConfig, accumulation
from zoo.train.loop import start_config, train
from zoo.train.model import CaffeSGD, build, load_source, param_groups

SHARED = Path(__file__).resolve().parents[2] / "shared"


def bare(cfg: TrainConfig, iters: int, device: str) -> float:
    """Images/s of forward + backward + SGD step on one fixed in-memory batch."""
    source = load_source(cfg.model, init=cfg.init, seed=0, weights=cfg.weights, like=cfg.like)
    net = build(source, 2, seed=0)
    net.module.to(device)
    opt = CaffeSGD(param_groups(net.module, cfg.weight_decay))
    micro, steps = accumulation(cfg)
    h, w = source.preprocess.input_size
    x = torch.randn(micro, 3, h, w, device=device) * 50
    y = torch.randint(0, 2, (micro,), device=device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        for _ in range(steps):
            logits, _ = net.forward(x)
            (F.cross_entropy(logits, y, reduction="sum") / cfg.batch).backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    return cfg.batch * iters / (time.perf_counter() - t)


def full(cfg: TrainConfig, iters: int) -> float:
    """Images/s of `zoo train` over the second half of 2 * iters iterations (the first warms up)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg.out, cfg.max_iter, cfg.log_every = str(Path(tmp) / "run"), 2 * iters, iters
        cfg.eval_every = cfg.ckpt_every = 10**9  # only at the very end, after the timed window
        cfg, _ = start_config(cfg, {}, False)
        train(cfg, show=False)
        with open(Path(cfg.out) / "log.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        return float(rows[1]["images_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(SHARED / "models/mtcnn/det3.prototxt"))
    ap.add_argument("--weights", default=str(SHARED / "models/mtcnn/det3.caffemodel"))
    ap.add_argument("--like", default="mtcnn_det3")
    ap.add_argument("--init", default="pretrained")
    ap.add_argument("--dataset", default=str(SHARED / "datasets/lfw_gender"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--micro-batch", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="alternate the two measurements; keep the best")
    a = ap.parse_args()
    os.environ.setdefault("ZOO_PACK_DIR", tempfile.mkdtemp(prefix="zoo-bench-pack-"))
    cfg = TrainConfig(dataset=a.dataset, model=a.model, weights=a.weights, like=a.like, init=a.init,
                      batch=a.batch, micro_batch=a.micro_batch, workers=a.workers, device=a.device,
                      preview=False)  # fmt: skip
    # On a shared machine other processes steal cores at random: alternate the two measurements and
    # keep each one's best, which is the least disturbed.
    bares, fulls = [], []
    for _ in range(a.repeats):
        bares.append(bare(cfg, a.iters, a.device))
        fulls.append(full(TrainConfig(**cfg.to_dict()), a.iters))
    ips_bare, ips_full = max(bares), max(fulls)
    cost = 1.0 - ips_full / ips_bare
    print(f"model {Path(a.model).name}, batch {a.batch} (micro {a.micro_batch}), {a.workers} workers, "
          f"{torch.get_num_threads()} threads, {a.device}")  # fmt: skip
    print(f"bare forward+backward+step: {ips_bare:8.1f} images/s")
    print(f"zoo train (data + augment):  {ips_full:8.1f} images/s")
    print(f"all runs: bare {', '.join(f'{v:.1f}' for v in bares)}; train {', '.join(f'{v:.1f}' for v in fulls)}")
    print(f"ratio train/bare {ips_full / ips_bare:.3f}; data pipeline cost {100 * cost:.1f} % (target < 10 %)")


if __name__ == "__main__":
    main()
