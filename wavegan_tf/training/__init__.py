"""Training: losses, augmentation, the GAN trainer (n-critic train_step), run settings,
checkpoints, previews, distribution and the training loop."""
