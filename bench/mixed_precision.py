"""Benchmark: does bfloat16 training follow float32? Loss trajectories of the two policies.

Trains the same WaveGAN (same seed, same data order) once under the float32 policy and once
under ``mixed_bfloat16`` on the demo drums (or ``--data_dir``), and prints each metric's mean
over every fifth of the run for both. Training is unstable in reduced precision when these
drift apart or stop being finite. The last line holds ``name=value`` pairs: the largest
relative difference of the Wasserstein estimate per fifth, and whether every value was finite.

    python bench/mixed_precision.py
    python bench/mixed_precision.py --model_dim 32 --steps 500
"""

import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Training audio (default: the built-in demo drums).")
flags.DEFINE_integer("model_dim", 16, "Model width d (64 in the paper).")
flags.DEFINE_integer("batch_size", 16, "Clips per critic and generator update.")
flags.DEFINE_integer("steps", 300, "Iterations per policy, a multiple of 5.")

POLICIES = ("float32", "mixed_bfloat16")
PARTS = 5


def train_fifths(policy, data_dir, model_dim, batch_size, steps):
    """Trains from seed 0 under ``policy``; returns each metric's mean per fifth of the run."""
    import keras

    from wavegan_tf import GANTrainer, build_discriminator, build_generator, critic_batches
    from wavegan_tf.audio.data import audio_dataset
    from wavegan_tf.cpu.dtype_policy import global_dtype_policy

    with global_dtype_policy(policy):
        keras.utils.set_random_seed(0)
        gan = GANTrainer(build_generator(model_dim=model_dim),
                      build_discriminator(model_dim=model_dim), seed=0)
        gan.compile()
        dataset = critic_batches(audio_dataset(data_dir, batch_size=batch_size, seed=0),
                                 gan.n_critic)
        history = gan.fit(dataset, steps_per_epoch=steps // PARTS, epochs=PARTS, verbose=0,
                          shuffle=False)
    return history.history


def main(argv):
    del argv
    import numpy as np

    from wavegan_tf.audio.demo_data import ensure_demo_dataset
    from wavegan_tf.training.settings import DEMO_DATA_DIR

    if FLAGS.steps < PARTS or FLAGS.steps % PARTS:
        raise app.UsageError(f"--steps must be a positive multiple of {PARTS}")
    data_dir = FLAGS.data_dir or ensure_demo_dataset(DEMO_DATA_DIR)
    runs = {}
    for policy in POLICIES:
        runs[policy] = train_fifths(policy, data_dir, FLAGS.model_dim, FLAGS.batch_size,
                                    FLAGS.steps)
        for name, values in sorted(runs[policy].items()):
            print(f"{policy:<15} {name:<12} " + " ".join(f"{v:9.3f}" for v in values),
                  flush=True)
    fp32, bf16 = (np.array(runs[p]["wasserstein"]) for p in POLICIES)
    rel = np.abs(bf16 - fp32) / np.maximum(np.abs(fp32), 1e-6)
    finite = all(np.all(np.isfinite(v)) for run in runs.values() for v in run.values())
    print(f"wasserstein_max_rel_diff={rel.max():.3f} finite={int(finite)} "
          f"fp32_wasserstein_last={fp32[-1]:.3f} bf16_wasserstein_last={bf16[-1]:.3f}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
