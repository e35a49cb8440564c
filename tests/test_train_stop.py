"""Training's stop flag (what the studio's Stop uses instead of a signal): set between iterations, the
run checkpoints where it is and returns; resumed, it ends bit-identical to a run that never stopped."""

import threading
from pathlib import Path

import torch
from zoo.train import checkpoint
from zoo.train.config import TrainConfig
from zoo.train.loop import start_config, train

from tests import test_train_loop

DET3 = test_train_loop.DET3
faces = test_train_loop.faces  # the same fixture: 16 real LFW faces per gender (and det3 to start from)


class StopAfter(threading.Event):
    """An Event that reads as set from its n-th check on: the user pressing Stop during iteration n."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.checks = n, 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks >= self.n or super().is_set()


def config(faces: Path, out: Path, **over) -> TrainConfig:
    fields = dict(dataset=str(faces), out=str(out), model=str(DET3 / "det3.prototxt"),
                  weights=str(DET3 / "det3.caffemodel"), like="mtcnn_det3", max_iter=6, batch=4, micro_batch=4,
                  ckpt_every=4, eval_every=4, log_every=1, seed=5, workers=0, preview=False, augment="mirror")
    fields.update(over)
    cfg, state = start_config(TrainConfig(**fields), fields, False)
    return cfg


def test_stop_checkpoints_where_it_is_and_resumes_bit_identically(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    whole = train(config(faces, tmp_path / "whole"), show=False)
    assert not whole.stopped and whole.iters == 6
    stopped = train(config(faces, tmp_path / "cut"), show=False, stop=StopAfter(3))
    assert stopped.stopped and stopped.iters == 3 and stopped.ran == 3
    state = checkpoint.load(tmp_path / "cut")
    assert state["iter"] == 3  # not a regular checkpoint (every 4): the stop wrote it
    given = {"out": str(tmp_path / "cut")}
    cfg, state = start_config(TrainConfig(**given), given, True)
    resumed = train(cfg, resume_state=state, show=False, stop=threading.Event())  # a flag never set
    assert not resumed.stopped and resumed.iters == 6 and resumed.ran == 3
    a, b = checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "cut")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (tmp_path / "cut" / "log.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3", "4", "5", "6"]  # no row lost or repeated


def test_a_flag_set_on_the_last_iteration_finishes_normally(faces, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    stop = threading.Event()
    stop.set()
    result = train(config(faces, tmp_path / "one", max_iter=1), show=False, stop=stop)
    assert not result.stopped and result.iters == 1 and checkpoint.load(tmp_path / "one")["iter"] == 1
