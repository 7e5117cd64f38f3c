"""A PNG sheet of log spectrograms: a few real clips and a few clips of each model, to compare
by eye what WaveGAN and SpecGAN learned (the README's figure).

    python bench/spectrogram_sheet.py --real data/spoken_digits/test \\
        --models runs/digits_wave,runs/digits_spec --n 6 --out docs/specgan_vs_wavegan.png

Rows, top to bottom: ``--n`` real clips (a seeded draw of whole-file windows), then the clips of
each ``--models`` entry (a training directory or an export) from the z of ``--seed``. Each cell
is the STFT (window 256, hop 128) of 16384 samples: time left to right, 0-8 kHz bottom to top,
darker is louder, over the 80 dB below the loudest bin of the sheet. Cells are separated by
white lines; each row is labelled at its left (``--labels``; by default "real" and each model's
folder name with its training step, when its metadata holds one). The last line holds
``name=value`` pairs.
"""

import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS
flags.DEFINE_string("real", None, "Folder of real audio for the first row (optional).")
flags.DEFINE_list("models", [], "Training directories or exports, one row each.")
flags.DEFINE_integer("n", 6, "Clips per row.")
flags.DEFINE_integer("seed", 0, "Seed of the z (as generate.py --seed) and of the real draw.")
flags.DEFINE_string("out", "spectrograms.png", "Where to write the PNG.")
flags.DEFINE_list("labels", [], "Row labels, top to bottom (the real row first when --real is "
                  "given), e.g. 'real,paper 60 min,fast 60 min'. Default: 'real' and each "
                  "model's folder name with its step.")

DYNAMIC_RANGE_DB = 80.0
GAP = 2
LABEL_WIDTH = 300


def log_spectrograms(audio):
    """dB magnitudes ``[n, bins, frames]`` (highest frequency first) of ``[n, time, 1]``."""
    from wavegan_tf.audio.spectrogram import LOG_EPS, log_magnitude

    log_mag = log_magnitude(np.asarray(audio, np.float32)).numpy()
    db = 20.0 / np.log(10.0) * np.maximum(log_mag, np.log(LOG_EPS))
    return np.transpose(db, (0, 2, 1))[:, ::-1, :]


def sheet(rows):
    """One grayscale uint8 image ``[height, width, 1]`` of equally shaped dB cells in ``rows``."""
    top = max(float(row.max()) for row in rows)
    cell_h, cell_w = rows[0].shape[1:]
    n = max(len(row) for row in rows)
    image = np.full((len(rows) * (cell_h + GAP) - GAP, n * (cell_w + GAP) - GAP), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            level = np.clip((cell - top + DYNAMIC_RANGE_DB) / DYNAMIC_RANGE_DB, 0.0, 1.0)
            y, x = r * (cell_h + GAP), c * (cell_w + GAP)
            image[y:y + cell_h, x:x + cell_w] = np.round(255 * (1.0 - level)).astype(np.uint8)
    return image[..., None]


def real_clips(folder, n, seed):
    from wavegan_tf.audio.data import audio_dataset

    batch = next(iter(audio_dataset(folder, batch_size=n, first_slice=True, seed=seed)))
    return batch.numpy()


def model_clips(path, n, seed):
    from wavegan_tf.nets import latent
    from wavegan_tf.serving import loading

    model = loading.load_model_for_generation(path)
    return model.generate(latent.sample_z(n, model.latent_dim, seed))


def default_label(path):
    """A model row's label: its folder name, and its training step when the export's or run's
    metadata (model_card.json, training.json) holds one."""
    import json

    name = os.path.basename(os.path.normpath(path))
    for filename in ("model_card.json", "training.json"):
        try:
            with open(os.path.join(path, filename), encoding="utf-8") as f:
                step = json.load(f).get("step")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(step, int):
            return f"{name}, step {step}"
    return name


def write_labelled(image, labels, path):
    """Writes ``image`` (``[height, width, 1]`` uint8) as a PNG with ``labels`` left of its
    rows, one label per equally tall row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height, width = image.shape[:2]
    dpi = 100
    figure = Figure(figsize=((width + LABEL_WIDTH) / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    axis = figure.add_axes([LABEL_WIDTH / (width + LABEL_WIDTH), 0, width /
                            (width + LABEL_WIDTH), 1])
    axis.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255, aspect="auto",
                interpolation="nearest")
    axis.set_axis_off()
    row_height = (height + GAP) / len(labels)
    for index, label in enumerate(labels):
        y = 1.0 - (index + 0.5) * row_height / height
        figure.text(4 / (width + LABEL_WIDTH), y, label, va="center", ha="left", fontsize=9)
    figure.savefig(path, dpi=dpi, facecolor="white")


def main(argv):
    del argv
    rows, labels = [], []
    if FLAGS.real:
        rows.append(log_spectrograms(real_clips(FLAGS.real, FLAGS.n, FLAGS.seed)))
        labels.append("real")
    rows += [log_spectrograms(model_clips(path, FLAGS.n, FLAGS.seed)) for path in FLAGS.models]
    labels += [default_label(path) for path in FLAGS.models]
    if not rows:
        raise app.UsageError("give --real and/or --models")
    if FLAGS.labels:
        if len(FLAGS.labels) != len(rows):
            raise app.UsageError(f"--labels names {len(FLAGS.labels)} rows, the sheet has "
                                 f"{len(rows)} ({'real + ' if FLAGS.real else ''}"
                                 f"{len(FLAGS.models)} models)")
        labels = FLAGS.labels
    image = sheet(rows)
    write_labelled(image, labels, FLAGS.out)
    print(f"out={FLAGS.out} rows={len(rows)} clips_per_row={FLAGS.n} "
          f"height={image.shape[0]} width={image.shape[1]}")


if __name__ == "__main__":
    app.run(main)
