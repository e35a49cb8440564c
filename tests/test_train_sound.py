"""Training on sounds: class folders of audio files are found as sounds, their pictures are the
ones zoo dream makes, and each augmentation does to the picture what it does to the sound (checked
with numpy, and against a real resampled tone for the pitch shift)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sound_helpers import espeak
from zoo.dream import audio_io
from zoo.train import sound
from zoo.train.datasets import DatasetError, scan_folder


def _tone(path: Path, hz: float, seconds: float = 1.5, rate: int = sound.RATE) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    audio_io.write(path, (0.5 * np.sin(2 * np.pi * hz * t))[None].astype(np.float32), rate)
    return path


def _peak_row(gray: np.ndarray) -> int:
    """The row (counted from the bottom, 0 Hz) of the loudest bin, over the middle columns."""
    mid = gray[:, gray.shape[1] // 4: 3 * gray.shape[1] // 4]
    return gray.shape[0] - 1 - int(np.argmax(mid.mean(axis=1)))


def test_sound_folders_are_a_sound_dataset_and_mixed_ones_refused(tmp_path):
    for name, hz in (("low", 300.0), ("high", 3000.0)):
        (tmp_path / "set" / name).mkdir(parents=True)
        _tone(tmp_path / "set" / name / "a.wav", hz)
        _tone(tmp_path / "set" / name / "b.flac", hz * 1.1)
    found = scan_folder(tmp_path / "set")
    assert found.kind == "sound" and found.classes == ["high", "low"] and len(found.items) == 4
    (tmp_path / "set" / "low" / "c.png").write_bytes(b"")
    with pytest.raises(DatasetError, match="sounds and"):
        scan_folder(tmp_path / "set")


def test_picture_rows_are_frequencies_and_silence_is_cut(tmp_path):
    pic = sound.picture(_tone(tmp_path / "t.wav", 1000.0), 64)
    gray = pic[:, :, 0].astype(np.float32)
    assert pic.shape[0] == sound.N_FFT // 2 + 1
    assert _peak_row(gray) == round(1000.0 * sound.N_FFT / sound.RATE)  # bin of 1 kHz: f * n_fft / rate


def test_pitch_augmentation_moves_a_tone_like_resampling(tmp_path):
    """Stretching rows by f puts a tone where the tone at f times its frequency is (real resampling)."""
    f = 1.06
    base = sound.picture(_tone(tmp_path / "a.wav", 800.0), 64)[:, :, 0].astype(np.float32)
    shifted = sound.pitch(torch.from_numpy(base), f).numpy()
    real = sound.picture(_tone(tmp_path / "b.wav", 800.0 * f), 64)[:, :, 0].astype(np.float32)
    assert abs(_peak_row(shifted) - _peak_row(real)) <= 1


def test_noise_adds_powers_and_crops_are_the_lowest_rows():
    gray = torch.tensor([[0.0, 100.0, 255.0]])
    level = torch.tensor([[100.0, 100.0, 0.0]])
    k = 80.0 / 255.0
    want = 10 * np.log10(10 ** (gray.numpy() * k / 10) + 10 ** (level.numpy() * k / 10)) / k
    np.testing.assert_allclose(sound.add_noise(gray, level).numpy(), want, rtol=1e-5)
    img = torch.arange(10 * 7, dtype=torch.float32).reshape(10, 7)
    c = sound.crop(img, 4, 2)
    assert torch.equal(c, img[-4:, 2:6])
    assert torch.equal(sound.crop(img, 8, 3)[:, 4:], torch.zeros(8, 4))  # past the end: silence


def test_augment_is_seeded_and_eval_is_the_middle(tmp_path):
    pic = sound.picture(espeak(tmp_path / "v.wav", "listen to the zoo"), 160)
    img = torch.from_numpy(pic.transpose(2, 0, 1).astype(np.float32))
    aug = sound.SoundAugment(128)
    a = aug(img, torch.Generator().manual_seed(5))
    b = aug(img, torch.Generator().manual_seed(5))
    assert a.shape == (3, 128, 128) and torch.equal(a, b)
    assert not torch.equal(a, aug(img, torch.Generator().manual_seed(6)))
    e = sound.SoundEval(128)(img)
    left = (img.shape[2] - 128) // 2
    assert torch.equal(e[0], img[0, -128:, left:left + 128])
