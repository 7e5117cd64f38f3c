"""Training: losses, augmentation, the GAN trainer (n-critic train_step), run settings and resume
rules, the data and strategy a run uses, checkpoints and their saver, previews, distribution and
the training loop, which its caller gives the evaluation and the export (wavegan_tf.runs)."""
