"""Sound dreams: the STFT geometry and chunk plans against numpy/scipy, and `zoo dream` on real sounds
(espeak-ng speech, a freedesktop chime) measured from the output files by independent code: PyAV
for the samples, scipy's STFT for the spectrogram, OpenCV dnn for the brain's activation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from dream_helpers import built_home, home  # noqa: F401 - fixtures
from scipy import signal
from sound_helpers import days_long, espeak, picture, read, snr_db, theme_sound
from sound_helpers import flac as _flac
from zoo.dream import audio_run, phase
from zoo.dream import spectrogram as spec

from zoo.cli import main

SHARED = Path(__file__).resolve().parents[2] / "shared"
EFF = SHARED / "models" / "efficientnet_lite0"
FAST = ["--n-fft", "256", "--hop", "128", "--octaves", "1", "--iterations", "1", "--layer", "block4/output"]


# --- pure parts ---------------------------------------------------------------------------------


def test_stft_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(3000).astype(np.float32)
    g = spec.Geometry(256, 64)
    ours = spec.stft(x, g)
    padded = np.pad(x, 128, mode="reflect")  # torch's centred frames: reflect by half a window
    _, _, z = signal.stft(padded, window="hann", nperseg=256, noverlap=192, boundary=None, padded=False)
    z = z * signal.get_window("hann", 256).sum()  # scipy scales by 1/sum(window)
    assert ours.shape == (129, g.frames(3000))
    np.testing.assert_allclose(ours, z[:, :ours.shape[1]], atol=2e-3 * np.abs(z).max())


def test_istft_inverts_and_unchanged_picture_changes_nothing():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(5000).astype(np.float32) * 0.1
    for scale in spec.FREQ_SCALES:
        g = spec.Geometry(512, 128, scale)
        s = spec.stft(x, g)
        db = spec.to_db(s)
        top = spec.top_db(float(np.abs(x).max()), g)
        pic = spec.picture(db, g, 22050, top)
        assert pic.shape == (257, g.frames(5000)) and pic.min() >= 0 and pic.max() <= 255
        out = phase.original(spec.resynth_magnitude(spec.dreamt_db(db, pic, pic.copy(), g, 22050, top)), s, g, 5000)
        assert snr_db(x, out) > 80


def test_mel_rows_are_even_in_mel_and_invert():
    pos = spec.mel_positions(257, 16000)
    hz = pos / 256 * 8000
    mels = 2595 * np.log10(1 + hz / 700)  # the HTK mel formula, written out
    np.testing.assert_allclose(np.diff(mels), np.diff(mels)[0], rtol=1e-9)
    g = spec.Geometry(512, 128, "mel")
    smooth = np.sin(np.linspace(0, 3, 257))[:, None].astype(np.float32) * np.ones((1, 4), np.float32)
    back = spec.from_rows(spec.to_rows(smooth, g, 16000), g, 16000)
    np.testing.assert_allclose(back, smooth, atol=2e-3)


def test_chunk_plan_covers_and_fades_sum_to_one():
    for n, size, overlap in [(10, 20, 3), (1000, 300, 50), (1001, 300, 0), (12345, 1000, 100)]:
        spans = audio_run.chunk_plan(n, size, overlap)
        total = np.zeros(n)
        for k, (a, b) in enumerate(spans):
            assert b - a == min(size, n)
            total[a:b] += audio_run.fade(spans, k)
        np.testing.assert_allclose(total, 1.0, atol=1e-6)
        starts = [a for a, _ in spans]
        assert starts == sorted(starts) and spans[-1][1] == n
        assert all(spans[k][1] - spans[k + 1][0] >= overlap for k in range(len(spans) - 1))


def test_mid_side_inverts_and_mix_scales_the_change_in_db():
    x = np.random.default_rng(3).standard_normal((2, 100)).astype(np.float32)
    ms = audio_run.split_channels(x, "midside")
    np.testing.assert_allclose(ms[0], (x[0] + x[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(audio_run.join_channels(ms, "midside"), x, rtol=1e-5, atol=1e-6)
    g = spec.Geometry(64, 16)
    db = np.full((33, 5), -20.0, np.float32)
    before = np.full((33, 5), 100.0, np.float32)
    after = before + 51.0  # 51 pixels = 16 dB at an 80 dB range
    for mix in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(spec.dreamt_db(db, before, after, g, 8000, 0.0, mix), -20.0 + 16.0 * mix,
                                   rtol=1e-5)


def test_griffin_lim_rebuilds_a_consistent_magnitude():
    rate = 8000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)).astype(np.float32)
    g = spec.Geometry(256, 64)
    s = spec.stft(x, g)
    rough = np.exp(1j * np.random.default_rng(0).uniform(0, 2 * np.pi, s.shape)).astype(np.complex64)
    y = phase.griffin_lim(np.abs(s), rough, g, len(x), iterations=64)
    err = np.linalg.norm(np.abs(spec.stft(y, g)) - np.abs(s)) / np.linalg.norm(np.abs(s))
    assert err < 0.1


def test_keep_loudness_matches_rms_and_peak_without_clipping():
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((2, 8000)) * 0.1).astype(np.float32)
    y = 2.0 * x + (rng.standard_normal((2, 8000)) * 0.05).astype(np.float32)
    y[:, ::800] = 3.0  # loud clicks: limited, not clipped
    out = audio_run.keep_loudness(y.copy(), x)
    db = lambda a, b: 20 * np.log10(a / b)  # noqa: E731
    assert abs(db(np.sqrt(np.mean(out ** 2)), np.sqrt(np.mean(x ** 2)))) < 1.0
    assert np.abs(out).max() <= np.abs(x).max() + 1e-6
    assert abs(db(np.abs(out).max(), np.abs(x).max())) < 1.0


# --- zoo dream on real sounds --------------------------------------------------------------------


def test_round_trip_without_steps_gives_the_input_back(home, tmp_path):  # noqa: F811
    """Step 0 (no change) with the original phase: >= 40 dB SNR, same rate, channels and sample count."""
    src = theme_sound("complete")
    out = tmp_path / "again.wav"
    assert main(["dream", str(src), "-o", str(out), "--step", "0", *FAST]) == 0
    x, rx = read(src)
    y, ry = read(out)
    assert (ry, y.shape) == (rx, x.shape)
    assert snr_db(x, y) >= 40


def _activation(pic: np.ndarray, blob: str) -> float:
    """Mean square of `blob` on a grey picture, by OpenCV dnn on the shared Caffe files."""
    cv2 = pytest.importorskip("cv2")
    net = cv2.dnn.readNetFromCaffe(str(EFF / "deploy.prototxt"), str(EFF / "efficientnet_lite0.caffemodel"))
    rgb = np.repeat(pic[:, :, None], 3, axis=2)
    net.setInput(cv2.dnn.blobFromImage(rgb, 1.0, (pic.shape[1], pic.shape[0]), (127.0, 127.0, 127.0)))
    return float(np.mean(net.forward(blob) ** 2))


@pytest.mark.parametrize("mode", ["original", "griffinlim"])
def test_the_dream_survives_resynthesis(home, tmp_path, mode):  # noqa: F811
    """The blob's activation on scipy's spectrogram of the output file is >= 1.5x the input's."""
    if not (EFF / "efficientnet_lite0.caffemodel").is_file():
        pytest.skip("../shared/models/efficientnet_lite0 is not available")
    src = espeak(tmp_path / "voice.wav", "dreams")
    out = tmp_path / f"dreamt-{mode}.wav"
    blob = "block7/output"
    assert main(["dream", str(src), "-o", str(out), "--layer", blob, "--phase", mode, "--gl-iterations", "16",
                 "--n-fft", "256", "--hop", "128", "--octaves", "2", "--iterations", "6", "--step", "3",
                 "--rounds", "3"]) == 0
    x, _ = read(src)
    y, _ = read(out)
    before = _activation(picture(x[0], 256, 128), blob)
    after = _activation(picture(y[0], 256, 128), blob)
    assert after >= 1.5 * before, (before, after)


def test_recipe_reproduces_bit_for_bit_and_png_output(home, tmp_path):  # noqa: F811
    src = espeak(tmp_path / "voice.wav", "zoo")
    out = tmp_path / "dreamt.wav"
    assert main(["dream", str(src), "-o", str(out), "--freq-scale", "mel", "--seed", "3", *FAST]) == 0
    again = tmp_path / "again.wav"
    assert main(["dream", "--recipe", str(out), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    job = audio_run.SoundJob.from_json(audio_run.read_sound_recipe(out), str(out))
    assert (job.options.freq_scale, job.options.n_fft, job.recipe.seed) == ("mel", 256, 3)
    png = tmp_path / "dreamt.png"
    assert main(["dream", str(src), "-o", str(png), "--freq-scale", "mel", "--seed", "3", *FAST]) == 0
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[1] == 129 and audio_run.SOUND_KEY in im.text


@pytest.mark.parametrize("case", ["text", "empty", "days", "cut", "corrupt"])
def test_bad_sound_is_one_line_and_writes_nothing(home, tmp_path, capsys, case):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    bad = folder / "bad.flac"
    if case == "text":
        bad.write_text("this is not a sound\n" * 50)
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "days":  # STREAMINFO's 36-bit sample count set to its largest: 36 days at 22050 Hz
        bad.write_bytes(days_long(espeak(tmp_path / "voice.wav"), bad))
    elif case == "cut":  # a real sound cut inside its header
        bad.write_bytes(_flac(espeak(tmp_path / "voice.wav"), bad)[:30])
    else:  # the middle third of its frames overwritten with noise
        b = _flac(espeak(tmp_path / "voice.wav"), bad)
        b[len(b) // 3: 2 * len(b) // 3] = np.random.default_rng(0).integers(0, 256, len(b) // 3 + 1,
                                                                             np.uint8).tobytes()[:2 * len(b) // 3 -
                                                                                                  len(b) // 3]
        bad.write_bytes(b)
    out = tmp_path / "out" / "dreamt.wav"
    out.parent.mkdir()
    assert main(["dream", str(bad), "-o", str(out), *FAST]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.flac" in err and "Traceback" not in err, err
    assert list(out.parent.iterdir()) == [] and [p.name for p in folder.iterdir()] == ["bad.flac"]


def test_video_soundtrack_is_dreamt_too(home, tmp_path):  # noqa: F811
    """`--audio dream`: the clip's tone comes back as long, with the dream's detail in its spectrogram."""
    from video_helpers import make_clip

    clip = make_clip(tmp_path / "clip.mp4", n=12, side=64)
    out = tmp_path / "dreamt.mp4"
    assert main(["dream", str(clip), "-o", str(out), "--audio", "dream", "--no-flow", "--octaves", "1",
                 "--iterations", "1", "--layer", "block4/output", "--step", "3"]) == 0
    x, rx = read(clip)
    y, ry = read(out)
    assert ry == rx and abs(y.shape[1] - x.shape[1]) < 0.05 * rx
    from zoo.dream import audio_io

    again = audio_io.write(tmp_path / "again.m4a", x.astype(np.float32), rx)  # AAC's own change, the baseline
    z, _ = read(again)
    n = min(x.shape[1], y.shape[1], z.shape[1])
    before = picture(x[0, :n], 1024, 512)
    dreamt = np.abs(picture(y[0, :n], 1024, 512) - before).mean()
    codec = np.abs(picture(z[0, :n], 1024, 512) - before).mean()
    assert dreamt > 2 * codec, (dreamt, codec)  # the tone's picture changed by more than the codec changes it
    from zoo.dream import video

    _, opts, _ = video.job_from_json(video.read_video_recipe(out), str(out))
    assert opts.audio == "dream"
