"""wavegan_tf.audio.plots: spectrogram images and the PNG sheet, checked on known signals."""

import numpy as np
import pytest
from PIL import Image

from wavegan_tf.audio import plots

SAMPLE_RATE = 16000


def tone(freq, seconds=1.0, amplitude=1.0):
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_log_mel_puts_a_tone_in_its_band_and_silence_at_the_floor():
    low, high = plots.log_mel_db(tone(300), SAMPLE_RATE), plots.log_mel_db(tone(3000),
                                                                            SAMPLE_RATE)
    assert low.shape == (plots.N_MELS, SAMPLE_RATE // plots.HOP_LENGTH + 1)
    assert np.argmax(low.mean(axis=1)) < np.argmax(high.mean(axis=1))
    assert low.max() > 20
    silence = plots.log_mel_db(np.zeros(4096, np.float32), SAMPLE_RATE)
    assert np.all(silence == plots.DB_RANGE[0])


def test_stereo_is_mixed_to_mono():
    clip = tone(500)
    np.testing.assert_allclose(plots.log_mel_db(np.stack([clip, clip], axis=1), SAMPLE_RATE),
                               plots.log_mel_db(clip, SAMPLE_RATE), atol=1e-4)


def test_spectrogram_images_are_rgb_with_low_frequencies_at_the_bottom():
    audio = np.stack([tone(200), np.zeros(SAMPLE_RATE, np.float32)])[..., None]
    images = plots.spectrogram_images(audio, SAMPLE_RATE)
    assert images.shape == (2, plots.N_MELS, SAMPLE_RATE // plots.HOP_LENGTH + 1, 3)
    assert images.dtype == np.uint8
    brightness = images[0].astype(float).mean(axis=(1, 2))
    assert np.argmax(brightness) > plots.N_MELS * 3 // 4  # row 0 is the top: high frequencies
    assert len(np.unique(images[1].reshape(-1, 3), axis=0)) == 1  # silence: one colour


def test_sheet_is_a_png_of_one_row_per_clip(tmp_path):
    generated = np.stack([tone(f, amplitude=0.8) for f in (200, 400, 800)])[..., None]
    path = plots.plot_sheet(str(tmp_path / "sheet.png"), generated, SAMPLE_RATE, title="t")
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("L"))
    assert width == pytest.approx(plots.PANEL_INCHES[0] * 2 * plots.SHEET_DPI, abs=2)
    assert height == pytest.approx((plots.PANEL_INCHES[1] * 3 + 0.6) * plots.SHEET_DPI, abs=2)
    assert pixels.std() > 20  # not blank: dark spectrograms and blue waveforms on white
    many = np.repeat(generated, 4, axis=0)
    with Image.open(plots.plot_sheet(str(tmp_path / "many.png"), many, SAMPLE_RATE)) as image:
        assert image.height == pytest.approx(
            (plots.PANEL_INCHES[1] * plots.MAX_SHEET_CLIPS + 0.6) * plots.SHEET_DPI, abs=2)


def test_sheet_must_be_png_and_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="must be a .png file"):
        plots.plot_sheet(str(tmp_path / "sheet.pdf"), np.zeros((1, 4096, 1)), SAMPLE_RATE)
    with pytest.raises(OSError):
        plots.plot_sheet(str(tmp_path / "missing" / "sheet.png"), np.zeros((1, 4096, 1)),
                         SAMPLE_RATE)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
