"""Shapes, parameter counts and argument checks of SpecGAN's generator and discriminator."""

import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import (GANTrainer, build_audio_generator, build_specgan_discriminator,
                        build_specgan_generator, compute_moments)
from wavegan_tf.nets.specgan_models import audio_generator_moments, spectrogram_generator


def test_paper_generator_has_wavegans_19065345_parameters():
    assert build_specgan_generator().count_params() == 19_065_345


def test_paper_discriminator_has_wavegans_17427969_parameters():
    assert build_specgan_discriminator().count_params() == 17_427_969


def test_generator_layer_shapes_follow_the_paper():
    g = build_specgan_generator(model_dim=64)
    expected = {"z_reshape": (4, 4, 1024), "upconv_0": (8, 8, 512), "upconv_1": (16, 16, 256),
                "upconv_2": (32, 32, 128), "upconv_3": (64, 64, 64),
                "upconv_4": (128, 128, 1)}
    for name, shape in expected.items():
        assert tuple(g.get_layer(name).output.shape[1:]) == shape, name
    assert g.get_layer("upconv_0").kernel_size == (5, 5)


def test_discriminator_layer_shapes_follow_the_paper():
    d = build_specgan_discriminator(model_dim=64)
    expected = {"downconv_0": (64, 64, 64), "downconv_4": (4, 4, 1024), "flatten": (16384,)}
    for name, shape in expected.items():
        assert tuple(d.get_layer(name).output.shape[1:]) == shape, name


@pytest.mark.parametrize("upsample", ["zeros", "nearest"])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_output_shapes_and_range(upsample, batchnorm):
    g = build_specgan_generator(latent_dim=8, model_dim=2, upsample=upsample,
                                use_batchnorm=batchnorm)
    d = build_specgan_discriminator(model_dim=2, use_batchnorm=batchnorm)
    image = g(np.random.uniform(-1, 1, (3, 8)).astype("float32"))
    assert tuple(image.shape) == (3, 128, 128, 1)
    assert np.all(np.abs(image) <= 1.0)
    assert tuple(d(image, training=True).shape) == (3, 1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="upsample="):
        build_specgan_generator(upsample="cubic")
    with pytest.raises(ValueError, match="model_dim=0"):
        build_specgan_discriminator(model_dim=0)


def test_audio_generator_maps_z_to_griffin_lim_audio_and_copies_with_set_weights():
    moments = compute_moments([np.random.default_rng(0).uniform(-1, 1, (2, 16384, 1))])
    g = build_specgan_generator(latent_dim=8, model_dim=2)
    audio_g = build_audio_generator(g, moments, griffin_lim_iters=2)
    z = np.random.uniform(-1, 1, (2, 8)).astype("float32")
    audio = audio_g(z)
    assert tuple(audio.shape) == (2, 16384, 1)
    # Only the moments (2 x 128 values, not trained) come on top of G's weights.
    assert audio_g.count_params() == g.count_params() + 256
    assert len(audio_g.trainable_weights) == len(g.trainable_weights)
    assert spectrogram_generator(audio_g) is g
    copy = build_audio_generator(build_specgan_generator(latent_dim=8, model_dim=2),
                                 griffin_lim_iters=2)
    copy.set_weights(audio_g.get_weights())
    np.testing.assert_allclose(audio_generator_moments(copy).std, moments.std)
    np.testing.assert_allclose(copy(z), audio, atol=1e-5)


def _spectrogram_trainer():
    gan = GANTrainer(build_specgan_generator(latent_dim=8, model_dim=2),
                  build_specgan_discriminator(model_dim=2), n_critic=2, latent_dim=8, seed=0)
    gan.compile()
    return gan


def test_the_wavegan_trainer_takes_spectrogram_stacks_in_both_layouts():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 3, 128, 128, 1)).astype("float32")
    for element in (images, images.reshape(6, 128, 128, 1)):
        gan = _spectrogram_trainer()
        assert gan.example_rank == 3
        history = gan.fit(tf.data.Dataset.from_tensors(element), verbose=0, shuffle=False)
        assert np.isfinite(history.history["d_loss"][0])
        assert np.isfinite(history.history["g_loss"][0])
    with pytest.raises(ValueError, match="real examples of 3 axes"):
        _spectrogram_trainer().fit(tf.data.Dataset.from_tensors(images[0, :, :, :, 0]),
                                   verbose=0, shuffle=False)
