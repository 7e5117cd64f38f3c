"""Pictures of audio clips: log-mel spectrogram images for TensorBoard, and a PNG sheet of
waveforms and log-mel spectrograms (``generate.py --plot``).

librosa computes the log-mel spectrogram and draws it with time and frequency axes
(``librosa.display``); matplotlib renders through its object API on the Agg canvas, so nothing
here uses pyplot's global state or needs a display. Every picture uses the same fixed decibel
range (:data:`DB_RANGE`, power relative to a full-scale 1.0), so a colour means the same
loudness in every image, at every step and in every sheet.
"""

import librosa
import librosa.display
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from wavegan_tf.audio.data import audio_dataset
from wavegan_tf.files.atomic_files import atomic_output_file

# The STFT and mel bands of the evaluation classifier's front end (wavegan_tf.eval.features).
N_FFT = 1024
HOP_LENGTH = 128
N_MELS = 128
F_MIN = 40.0
# Decibels shown, from black to white: a full-scale tone peaks near +33 dB, white noise near
# +17 dB; -60 dB is far below anything audible in a peak-normalised clip.
DB_RANGE = (-60.0, 40.0)
COLORMAP = "magma"
# Rows of a sheet: its first clips (generated, and as many real ones beside them).
MAX_SHEET_CLIPS = 8
PANEL_INCHES = (3.2, 1.4)
SHEET_DPI = 72


def log_mel_db(clip, sample_rate):
    """The log-mel power spectrogram ``[N_MELS, frames]`` in dB of one clip ``[time]`` or
    ``[time, channels]`` (channels averaged), clipped to :data:`DB_RANGE`."""
    mono = np.asarray(clip, np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=1)
    power = librosa.feature.melspectrogram(
        y=mono, sr=sample_rate, n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS, fmin=F_MIN,
        fmax=_f_max(sample_rate))
    return np.clip(librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None), *DB_RANGE)


def spectrogram_images(audio, sample_rate):
    """uint8 RGB images ``[n, N_MELS, frames, 3]`` of the clips ``audio`` ``[n, time,
    channels]``, low frequencies at the bottom, for ``tf.summary.image``."""
    low, high = DB_RANGE
    db = np.stack([log_mel_db(clip, sample_rate)[::-1] for clip in audio])
    rgba = colormaps[COLORMAP]((db - low) / (high - low))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def plot_sheet(path, generated, sample_rate, real=None, title=None):
    """Writes a PNG sheet to ``path`` (atomically) and returns ``path``.

    One row per clip, for the first :data:`MAX_SHEET_CLIPS` clips of ``generated``
    ``[n, time, channels]``: its waveform and its log-mel spectrogram; with ``real`` (clips of
    the training data, same layout) two more columns show as many real clips the same way.
    """
    if not str(path).lower().endswith(".png"):
        raise ValueError(f"the plot {str(path)!r} must be a .png file")
    columns = [("generated", np.asarray(generated)[:MAX_SHEET_CLIPS])]
    if real is not None:
        columns.append(("real", np.asarray(real)[:len(columns[0][1])]))
    rows = len(columns[0][1])
    figure = Figure(figsize=(PANEL_INCHES[0] * 2 * len(columns), PANEL_INCHES[1] * rows + 0.6),
                    layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 2 * len(columns), squeeze=False)
    for number, (name, clips) in enumerate(columns):
        for row, clip in enumerate(clips):
            wave_axes, mel_axes = axes[row, 2 * number], axes[row, 2 * number + 1]
            _draw_waveform(wave_axes, clip, sample_rate)
            _draw_log_mel(mel_axes, clip, sample_rate)
            if row == 0:
                wave_axes.set_title(f"{name}: waveform", fontsize=9)
                mel_axes.set_title(f"{name}: log-mel (dB)", fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    with atomic_output_file(str(path), suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=SHEET_DPI)
    return path


def plot_sheet_beside_data(path, generated, sample_rate, data_dir=None, seed=0, title=None):
    """:func:`plot_sheet` of ``generated`` beside as many real clips cut at random (seeded by
    ``seed``) from the folder of audio ``data_dir``, when it is given."""
    clips = np.asarray(generated)[:MAX_SHEET_CLIPS]
    real = None
    if data_dir is not None:
        real = next(iter(audio_dataset(
            data_dir, slice_len=clips.shape[1], sample_rate=sample_rate,
            num_channels=clips.shape[2], batch_size=len(clips), seed=seed))).numpy()
    return plot_sheet(path, clips, sample_rate, real=real, title=title)


def _draw_waveform(axes, clip, sample_rate):
    mono = np.asarray(clip, np.float32)
    librosa.display.waveshow(mono.mean(axis=1) if mono.ndim == 2 else mono, sr=sample_rate,
                             ax=axes, color="tab:blue", linewidth=0.5)
    axes.set(ylim=(-1.05, 1.05), xlabel=None, ylabel=None)
    axes.tick_params(labelsize=6)


def _draw_log_mel(axes, clip, sample_rate):
    librosa.display.specshow(
        log_mel_db(clip, sample_rate), sr=sample_rate, hop_length=HOP_LENGTH, n_fft=N_FFT,
        x_axis="time", y_axis="mel", fmin=F_MIN, fmax=_f_max(sample_rate), ax=axes,
        cmap=COLORMAP, vmin=DB_RANGE[0], vmax=DB_RANGE[1])
    axes.set(xlabel=None, ylabel=None)
    axes.tick_params(labelsize=6)


def _f_max(sample_rate):
    """The top mel band: 7800 Hz as in the classifier, or just under Nyquist below 16 kHz."""
    return min(7800.0, 0.4875 * sample_rate)
