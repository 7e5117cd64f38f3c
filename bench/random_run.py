"""A training directory holding a freshly built WaveGAN, for benchmarks of exported G.

Random weights cost what trained ones do, so benchmarks of generation need no training.
"""


def make_train_dir(directory, model_dim):
    """A training directory with a config and one checkpoint of a freshly built WaveGAN."""
    import tensorflow as tf

    from wavegan_tf.training import checkpoints
    from wavegan_tf.training.config import GANConfig

    config = GANConfig(model_dim=model_dim)
    config.save(directory)
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.CheckpointManager(checkpoints.make_checkpoint(config.build_gan(), step),
                               checkpoints.checkpoint_dir(directory), max_to_keep=1).save()
    return config
