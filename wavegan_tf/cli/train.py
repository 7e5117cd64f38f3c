"""Trains a WaveGAN on a folder of audio (default: the built-in demo drum dataset).

Installed as the command wavegan-train; in a source checkout also python train.py:

  python train.py --train_dir runs/drums --model_dim 8 --batch_size 8 --train_steps 200
  python train.py --train_dir runs/sc09 --data_dir data/sc09/train   # paper settings
  python train.py --train_dir runs/sc09                              # resume where it stopped
  python train.py --train_dir runs/digits --data_dir data/digits --conditional
      # class-conditional: one label per subfolder of data/digits
  python train.py --train_dir runs/sc09_spec --data_dir data/sc09/train --model specgan
      # SpecGAN: spectrograms, audio by Griffin-Lim

Settings come from the flags for a new run and are saved in TRAIN_DIR/config.json and
TRAIN_DIR/training.json. Running again with the same --train_dir resumes from the newest
checkpoint with the saved settings; only flags given on the command line change them, and
flags that fix the architecture, the loss or the seed must match the saved values.

Progress: a Keras progress bar (losses and it/s) on a terminal, one line per 100 steps otherwise;
where everything is written is logged at the start.

Killed at any moment, a run resumes from its newest complete checkpoint when started again.
Only one trainer at a time may use a --train_dir: a second one is refused, naming the first.

Exit status: 0 when the run reaches --train_steps; 128 + the signal number (130 for Ctrl-C,
143 for SIGTERM) when a signal stopped it after saving a checkpoint; 1 for an error (bad flag,
missing data, unwritable train_dir, train_dir in use, a checkpoint that cannot be saved or
read, NaN loss), printed as "error: ...".
"""

import logging as pylogging
import os
import signal
import sys

from absl import app, flags, logging

from wavegan_tf import runs
from wavegan_tf.cli import run_program
from wavegan_tf.nets import models
from wavegan_tf.training import augment, distribute, losses, recipes, settings
from wavegan_tf.training.callbacks import TrainingDiverged
from wavegan_tf.training.config import MODEL_DEFAULTS, MODELS, GANConfig

FLAGS = flags.FLAGS
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = GANConfig()
_OPTIONS = settings.TrainingOptions()

flags.DEFINE_string(
    "data_dir", None,
    "Folder of training audio, searched recursively (wav, flac, ogg, aiff, mp3). Default: the "
    f"demo drum dataset in {settings.DEMO_DATA_DIR}"
    f"{'' if os.path.isabs(settings.DEMO_DATA_DIR) else ' (under the current directory)'}, "
    "synthesised on first use.")
flags.DEFINE_string(
    "train_dir", None,
    "Folder for the config, checkpoints, TensorBoard logs, previews and export. An existing "
    "run there is resumed. Default: runs/<YYYYmmdd-HHMMSS>.")
# Audio and architecture (fixed for a run: a resume must not change them).
flags.DEFINE_enum(
    "model", _CONFIG.model, list(MODELS),
    "wavegan (audio) or specgan (log-magnitude spectrograms with a 2-D DCGAN, turned into audio "
    "by Griffin-Lim; needs --slice_len 16384, mono, no --post_proc_filt_len or "
    "--conditional). specgan changes the defaults of "
    + ", ".join(f"--{name} to {value}" for name, value in MODEL_DEFAULTS["specgan"].items())
    + ".")
flags.DEFINE_enum("slice_len", str(_CONFIG.slice_len), [str(n) for n in models.SLICE_LENS],
                  "Samples per generated clip.")
flags.DEFINE_integer("sample_rate", _CONFIG.sample_rate,
                     "Sample rate in Hz; training audio is resampled to it.")
flags.DEFINE_integer("num_channels", _CONFIG.num_channels,
                     "Audio channels (1 = mono; audio is mixed or duplicated to match).")
flags.DEFINE_integer("model_dim", _CONFIG.model_dim, "Width multiplier d of G and D.")
flags.DEFINE_integer("latent_dim", _CONFIG.latent_dim, "Size of z ~ U(-1, 1).")
flags.DEFINE_integer("kernel_len", _CONFIG.kernel_len,
                     "Length of every convolution kernel (the side of SpecGAN's square ones).")
flags.DEFINE_integer("phase_shuffle", _CONFIG.phase_shuffle,
                     "Phase shuffle radius n of D (0 turns it off; SpecGAN has none).")
flags.DEFINE_enum("upsample", _CONFIG.upsample, list(models.UPSAMPLE_MODES),
                  "G's upsampling: zeros (transposed convolution) or nearest (resize + conv).")
flags.DEFINE_integer("post_proc_filt_len", _CONFIG.post_proc_filt_len,
                     "Length of G's learned post-processing filter (0 = none; paper: 512).")
flags.DEFINE_boolean("batchnorm", _CONFIG.batchnorm, "Batch normalisation in G and D.")
flags.DEFINE_list("spectral_heads", _CONFIG.spectral_heads,
                  "WaveGAN: STFT frame lengths (powers of two, e.g. 256,1024) of spectral heads "
                  "whose logits D adds to its own (default: none, the paper).")
flags.DEFINE_boolean("spectrogram_head", _CONFIG.spectrogram_head,
                     "WaveGAN: a 2-D critic on the clip's log spectrogram (SpecGAN's D in shape) "
                     "whose logit D adds to its own (off in the paper).")
flags.DEFINE_boolean("minibatch_std", _CONFIG.minibatch_std,
                     "WaveGAN: the minibatch standard-deviation feature before D's last "
                     "convolution (off in the paper).")
flags.DEFINE_boolean(
    "conditional", _CONFIG.conditional,
    "Class-conditional WaveGAN: --data_dir holds one subfolder of audio per class "
    "(DATA_DIR/<class>/...), G and D take the label, and previews, export and generate.py "
    "work per class.")
flags.DEFINE_list(
    "class_names", _CONFIG.class_names,
    "With --conditional: the class subfolders to train on, comma-separated, in label order "
    "(default: every first-level subfolder of --data_dir, sorted). Saved in config.json.")
flags.DEFINE_enum("loss", _CONFIG.loss, list(losses.LOSSES), "GAN objective.")
flags.DEFINE_integer("seed", _CONFIG.seed,
                     "Seed of the weights, z, the data order and the preview z.")
# Objective and optimisation (may change on resume).
flags.DEFINE_integer("n_critic", _CONFIG.n_critic, "Critic (D) updates per generator step.")
flags.DEFINE_integer("batch_size", _CONFIG.batch_size, "Clips per batch.")
flags.DEFINE_float("g_learning_rate", _CONFIG.g_learning_rate,
                   "Generator learning rate; 0 = the loss's default (wgan-gp: Adam 1e-4).")
flags.DEFINE_float("d_learning_rate", _CONFIG.d_learning_rate,
                   "Discriminator learning rate; 0 = the loss's default (wgan-gp: Adam 1e-4).")
flags.DEFINE_float("adam_beta1", _CONFIG.adam_beta1,
                   "Adam's beta1 for G and D (default: the loss's; wgan-gp 0.5, hinge 0).")
flags.DEFINE_float("adam_beta2", _CONFIG.adam_beta2,
                   "Adam's beta2 for G and D (default: the loss's; wgan-gp 0.9, hinge 0.99).")
flags.DEFINE_float("gp_weight", _CONFIG.gp_weight, "Gradient penalty weight (wgan-gp only).")
flags.DEFINE_float("r1_gamma", _CONFIG.r1_gamma,
                   "Weight gamma of the R1 penalty gamma/2 E|grad D(x)|^2 on real clips (0 = off, "
                   "the paper; not with wgan-gp).")
flags.DEFINE_integer("r1_every", _CONFIG.r1_every,
                     "Apply R1 on every this-many critic updates, weighted by it (lazy R1).")
flags.DEFINE_float("feature_matching", _CONFIG.feature_matching,
                   "Weight of a feature-matching term in G's loss: the mean absolute difference "
                   "of D's mean activations on real and generated clips (0 = off, the paper).")
flags.DEFINE_enum("recipe", "paper", list(recipes.RECIPES),
                  "Starting settings: paper (the defaults) or fast (good sound sooner on a "
                  f"CPU). fast sets {recipes.describe('fast')}. Flags given explicitly win.")
flags.DEFINE_float("clip_value", _CONFIG.clip_value,
                   "Weight clipping bound of D (wgan only).")
flags.DEFINE_integer("griffin_lim_iters", _CONFIG.griffin_lim_iters,
                     "SpecGAN: Griffin-Lim iterations from spectrogram to audio in previews, "
                     "evaluation and the export.")
flags.DEFINE_float("ema_decay", _CONFIG.ema_decay,
                   "Generator weight averaging: the decay of an exponential moving average of "
                   "G's weights (e.g. 0.999; 0 = off, the paper). Previews, --eval_every_steps, "
                   "the best and final exports and generate.py use the average; checkpoints "
                   "hold both. Turned on at a resume, the average starts from the restored G.")
flags.DEFINE_list("augment", _CONFIG.augment,
                  "Differentiable augmentation of every clip D sees, real and generated, for "
                  f"small datasets: comma-separated policies out of {','.join(augment.POLICIES)} "
                  f"(random gain of +-{augment.GAIN_DB:g} dB, time shift of up to "
                  f"{augment.SHIFT_FRACTION:g} of the clip, a zeroed window of "
                  f"{augment.MASK_FRACTION:g} of the clip). Default: none (the paper).")
# Running the job.
flags.DEFINE_integer("train_steps", _OPTIONS.train_steps,
                     "Total generator steps; training stops when the step count (including "
                     "steps before a resume) reaches it.")
flags.DEFINE_integer("save_every_steps", _OPTIONS.save_every_steps,
                     "Save a checkpoint every this many steps (0 = off).")
flags.DEFINE_float("save_every_secs", _OPTIONS.save_every_secs,
                   "Also save a checkpoint once this many seconds passed since the last save "
                   "(0 = off). A checkpoint is always saved at the end and on SIGINT/SIGTERM.")
flags.DEFINE_integer("preview_every_steps", _OPTIONS.preview_every_steps,
                     "Write TRAIN_DIR/previews/step_<N>.wav and TensorBoard audio every this "
                     "many steps (0 = only at the end).")
flags.DEFINE_integer("keep_checkpoints", _OPTIONS.keep_checkpoints,
                     "Number of newest checkpoints kept.")
flags.DEFINE_boolean("export", _OPTIONS.export,
                     "Export the generator to TRAIN_DIR/export when training reaches "
                     "--train_steps.")

# Scale and speed (may change on resume, except mixed_float16 on or off).
flags.DEFINE_enum("strategy", _OPTIONS.strategy, list(distribute.STRATEGIES),
                  "tf.distribute strategy: default (one device), mirrored (all local GPUs), "
                  "multi_worker (the cluster in TF_CONFIG; run the same command on every "
                  "worker with a shared --train_dir) or tpu. --batch_size is the global batch "
                  "over all replicas.")
flags.DEFINE_string("tpu", _OPTIONS.tpu,
                    "With --strategy tpu: the TPU name, grpc:// address, or 'local' on a TPU "
                    "VM (default: found from the environment).")
flags.DEFINE_enum("mixed_precision", _OPTIONS.mixed_precision,
                  list(settings.MIXED_PRECISION_POLICIES),
                  "Compute in bfloat16 or float16 with float32 weights (float16 with loss "
                  "scaling); audio stays float32. mixed_bfloat16 is faster only on GPUs, TPUs "
                  "and CPUs with AVX512_BF16 or AMX; other CPUs emulate it, several times "
                  "slower than float32 (the run warns at its start).")
flags.DEFINE_boolean("jit_compile", _OPTIONS.jit_compile,
                     "Compile the train step with XLA (for GPU/TPU; slower on CPU).")
flags.DEFINE_integer("micro_batches", _OPTIONS.micro_batches,
                     "Split each batch into this many equal parts, processed one after the "
                     "other with their gradients summed: lower peak memory, the same update "
                     "(phase-shuffle shifts are replayed per part). Must divide the batch of "
                     "each replica.")
flags.DEFINE_enum("conv_plan", _OPTIONS.conv_plan, list(settings.CONV_PLANS),
                  "How the strided convolutions run on a CPU-only machine: tuned (each layer's "
                  "three products timed with TensorFlow's op and as matmuls at the run's batch "
                  "size, once per machine and shape, the faster kept; cached in "
                  "$WAVEGAN_TF_CACHE_DIR or ~/.cache/wavegan_tf/conv_plans.json), auto (a fixed "
                  "rule by CPU kind), standard (TensorFlow's ops) or polyphase (all as "
                  "matmuls). tuned falls back to auto on GPUs and TPUs (TensorFlow's ops "
                  "there) and under --jit_compile.")
# Scoring while training.
flags.DEFINE_integer("eval_every_steps", _OPTIONS.eval_every_steps,
                     "Score G every this many steps with --eval_classifier (0 = off): "
                     "TensorBoard eval/*, TRAIN_DIR/eval.jsonl, and the best generator so far "
                     "exported to TRAIN_DIR/best.")
flags.DEFINE_string("eval_classifier", _OPTIONS.eval_classifier,
                    "Classifier (.keras) from 'evaluate.py train_classifier' for "
                    "--eval_every_steps.")
flags.DEFINE_integer("eval_n", _OPTIONS.eval_n,
                     "Clips generated from fixed z at each evaluation.")

CONFIG_FLAGS = tuple(GANConfig.__dataclass_fields__)
OPTION_FLAGS = tuple(settings.TrainingOptions.__dataclass_fields__)


def given_values(names):
    """The flags among ``names`` that were given on the command line, as typed values."""
    values = {name: FLAGS[name].value for name in names if FLAGS[name].present}
    if "slice_len" in values:
        values["slice_len"] = int(values["slice_len"])
    if "spectral_heads" in values:
        try:
            values["spectral_heads"] = [int(n) for n in values["spectral_heads"]]
        except ValueError:
            raise app.UsageError(f"--spectral_heads takes whole numbers (STFT frame lengths), "
                                 f"got {','.join(values['spectral_heads'])}") from None
    return values


class _PackageInfoOnly(pylogging.Filter):
    """Lets INFO lines through only from wavegan_tf itself; warnings and errors from anywhere."""

    def filter(self, record):
        return record.levelno >= pylogging.WARNING or record.pathname.startswith(_PACKAGE_DIR)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.INFO)
    logging.get_absl_handler().addFilter(_PackageInfoOnly())
    pylogging.getLogger("tensorflow").setLevel(pylogging.WARNING)
    train_dir = FLAGS.train_dir or settings.default_train_dir()
    print(f"train_dir: {train_dir}", flush=True)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        config_values = recipes.with_recipe(FLAGS.recipe, given_values(CONFIG_FLAGS),
                                            saved=settings.saved_config(train_dir))
        result = runs.train(train_dir, config_values, given_values(OPTION_FLAGS),
                            verbose=1 if sys.stdout.isatty() else 2)
    except (OSError, ValueError, TrainingDiverged) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted before a checkpoint could be saved", file=sys.stderr)
        return 130
    if result.interrupted_by is not None:
        return 128 + result.interrupted_by
    return 0


def _exit_on_sigterm(signum, frame):
    """SIGTERM outside the training steps (which stop cleanly on it) exits with 143 through
    SystemExit, so that the run's lock and temporary files are cleaned up on the way out."""
    raise SystemExit(128 + signum)


def run():
    """Entry point of ``wavegan-train`` and ``python train.py``."""
    run_program(main, __name__)


if __name__ == "__main__":
    run()
