"""Writes 16-bit WAV clips from a trained WaveGAN generator.

Installed as the command wavegan-generate; in a source checkout also python generate.py.

The model is a training directory (G from its newest checkpoint), its export/ folder, any
SavedModel written by wavegan_tf.serving.export, or a model that ships with the package
(pretrained:digits, pretrained:drums; --list_pretrained lists them). Examples:

  python generate.py --model pretrained:drums --n 8
  python generate.py --list_pretrained
  python generate.py --model runs/sc09 --n 16 --out_dir samples
  python generate.py --model runs/sc09/export --seed 7 --z_out z.npy --concat
  python generate.py --model runs/sc09 --z_in z.npy --out_dir again
  python generate.py --model runs/drums --z_in wavegan_kept.json --out_dir kept
  python generate.py --model runs/sc09 --interpolate 8 --seed 3 --out_dir walk
  python generate.py --model runs/digits --label seven --n 8 --out_dir sevens
  python generate.py --model runs/digits/export --per_class 4 --out_dir digits
  python generate.py --model runs/drums --web site    # the drum machine: open site/index.html
  python generate.py --model runs/drums --web site --z_in wavegan_kept.json
  python generate.py --model runs/drums --tflite drums.tflite --tflite_weights int8
  python generate.py --model drums.tflite --n 8 --out_dir from_tflite
  python generate.py --model runs/drums --n 8 --plot drums.png --plot_data_dir data/demo_drums

A conditional model (trained with --conditional) needs --label or --per_class.

--web writes a static web page that runs the generator in the browser instead of WAV files
(an installed wheel carries the TensorFlow.js scripts; a source checkout needs `npm ci` run
once in web/);
--tflite writes a LiteRT flatbuffer of the generator, which --model then accepts.

Expected failures (missing model, no checkpoint, damaged checkpoints or export, wrong
SavedModel, unwritable output, existing files, a missing web runtime) are printed as
"error: ..." with exit status 1.
"""

import os
import sys

from absl import app, flags

from wavegan_tf.audio import plots, wav_io
from wavegan_tf.cli import run_program
from wavegan_tf.cli.generate_wavs import WAV_ONLY_FLAGS, check_no_wav_options, run_generation
from wavegan_tf.serving import generation, loading, pretrained, tflite_export, web_export

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "model", None,
    "A training directory (uses its newest checkpoint), its export/ folder, any SavedModel "
    "exported by wavegan_tf, a .tflite file written by --tflite, or pretrained:NAME, a model "
    "that ships with the package (see --list_pretrained).")
flags.DEFINE_boolean(
    "list_pretrained", False,
    "List the pretrained models that ship with the package, with their model cards, and exit.")
flags.DEFINE_integer(
    "n", None,
    f"Number of clips drawn at random (default {generation.DEFAULT_NUM_CLIPS}); not allowed "
    "with --z_in or --interpolate, which fix the count.")
flags.DEFINE_string("out_dir", "generated", "Folder for the WAV files; created if missing.")
flags.DEFINE_integer(
    "seed", 0,
    "Seed of z ~ U(-1, 1) (numpy default_rng). The same seed gives the same clips from a "
    "training directory and from its export; clip i does not depend on --n.")
flags.DEFINE_integer(
    "batch_size", loading.DEFAULT_BATCH_SIZE, "Clips per forward pass of the generator.")
flags.DEFINE_string(
    "z_in", None,
    "A z file to generate from (one clip per row), to reproduce or edit clips: a .npy of z "
    "vectors [n, latent_dim] (e.g. a --z_out file), or a .json z file ({\"format\": "
    "\"wavegan_tf.z\", \"version\": 1, \"latent_dim\": D, \"z\": [[...], ...], optional "
    "\"labels\": a class name or index per row}), which the drum machine page's Export kept "
    "sounds writes; for a conditional model its labels give each clip's class unless --label "
    "is given. With --web: the pads start from its rows (at most 8; the rest from --seed).")
flags.DEFINE_string("z_out", None, "Also write the z used, [n, latent_dim] float32, to this .npy.")
flags.DEFINE_integer(
    "interpolate", 0,
    "If >= 2, write this many clips along the straight line from the z of --seed to the z of "
    "--seed + 1 (the first clip of each seed); 0 turns it off.")
flags.DEFINE_boolean(
    "concat", False,
    f"Also write {generation.CONCAT_FILENAME}: all clips in order, each followed by "
    f"{wav_io.CONCAT_GAP_SECONDS} s of silence.")
flags.DEFINE_boolean(
    "overwrite", False, "Replace existing output files instead of refusing to write.")
flags.DEFINE_string(
    "label", None,
    "Conditional models: the class of every clip, by name or index (see the classes in "
    "config.json or the export's class_names).")
flags.DEFINE_integer(
    "per_class", None,
    "Conditional models: write this many clips of every class into OUT_DIR/<class>/, the same "
    "z (from --seed) for each class.")
flags.DEFINE_string(
    "web", None,
    "Instead of WAV files, write the drum machine web page of --model (a training directory "
    "or an export) into this folder: index.html, scripts, G's weights and manifest.json (also "
    "as scripts, so the page opens from disk as well as from a web server). Its "
    "eight pads start from the z of --seed (pad i = clip i of generate.py --seed), or from the "
    "rows of --z_in first. An existing non-empty folder is replaced only with --overwrite.")
flags.DEFINE_string(
    "tflite", None,
    "Instead of WAV files, write G of --model (a training directory or an export) as a LiteRT "
    "flatbuffer to this .tflite file, with its facts in FILE.tflite.json beside it; generate.py "
    "--model FILE.tflite then generates from it. Existing files are replaced only with "
    "--overwrite.")
flags.DEFINE_enum(
    "tflite_weights", "float32", list(tflite_export.WEIGHT_TYPES),
    "With --tflite: how the weights are stored: float32 (as trained), float16 (half the size) "
    "or int8 (a quarter, dynamic-range quantized; activations stay float32).")
flags.DEFINE_integer(
    "tflite_batch", 1,
    "With --tflite: clips per call of the LiteRT model, fixed in the file. 1 suits one sound "
    "at a time (phones, instruments); 8 or 16 make many clips faster each, as G's weights are "
    "read once per call (a lone clip then costs a whole batch).")
flags.DEFINE_string(
    "plot", None,
    "Also write this .png: the waveform and log-mel spectrogram of each of the first "
    f"{plots.MAX_SHEET_CLIPS} clips written, one row per clip.")
flags.DEFINE_string(
    "plot_data_dir", None,
    "With --plot: a folder of real audio (e.g. the training data); as many real clips, cut "
    "at random (seeded by --seed), are drawn beside the generated ones.")


def _given(names):
    """The flags among ``names`` that were set on the command line."""
    return [name for name in names if FLAGS[name].present]


def write_web(site_dir):
    """--web: checks no WAV flag but --z_in (the pads' z) was given, writes the site, prints
    how to open it."""
    check_no_wav_options("--web", _given(name for name in WAV_ONLY_FLAGS if name != "z_in"))
    web_export.export_web(FLAGS.model, site_dir, seed=FLAGS.seed, z_in=FLAGS.z_in,
                          overwrite=FLAGS.overwrite)
    print(f"wrote the drum machine page to {site_dir}; open "
          f"{os.path.join(site_dir, 'index.html')} in a browser, or serve the folder: "
          f"python -m http.server -d {site_dir}")


def write_tflite(path):
    """--tflite: checks no WAV flag was given, writes the flatbuffer and its facts."""
    check_no_wav_options("--tflite", _given(WAV_ONLY_FLAGS + ("seed",)))
    tflite_export.export_tflite(FLAGS.model, path, weights=FLAGS.tflite_weights,
                                batch=FLAGS.tflite_batch,
                                overwrite=FLAGS.overwrite)
    print(f"wrote {path} ({FLAGS.tflite_weights} weights) and "
          f"{tflite_export.metadata_path(path)}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.list_pretrained:
        print("\n".join(pretrained.describe(name) for name in pretrained.names())
              or "no pretrained models in this installation")
        return 0
    if FLAGS.model is None:
        raise app.UsageError("--model is required (a training directory, an export, a .tflite "
                             "file or pretrained:NAME; see --list_pretrained)")
    if FLAGS.web is not None and FLAGS.tflite is not None:
        raise app.UsageError("--web and --tflite are exclusive: write one at a time")
    for name in ("tflite_weights", "tflite_batch"):
        if FLAGS[name].present and FLAGS.tflite is None:
            raise app.UsageError(f"--{name} needs --tflite")
    try:
        if FLAGS.web is not None:
            write_web(FLAGS.web)
            return 0
        if FLAGS.tflite is not None:
            write_tflite(FLAGS.tflite)
            return 0
        written = run_generation(
            FLAGS.model, FLAGS.out_dir, n=FLAGS.n, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
            z_in=FLAGS.z_in, z_out=FLAGS.z_out, interpolate=FLAGS.interpolate,
            concat=FLAGS.concat, overwrite=FLAGS.overwrite, label=FLAGS.label,
            per_class=FLAGS.per_class, plot=FLAGS.plot, plot_data_dir=FLAGS.plot_data_dir)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {FLAGS.out_dir}")
    return 0


def run():
    """Entry point of ``wavegan-generate`` and ``python generate.py``."""
    run_program(main, __name__)


if __name__ == "__main__":
    run()
