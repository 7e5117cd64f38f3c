"""Shapes, parameter counts and argument checks of the generator and discriminator."""

import keras
import numpy as np
import pytest

from wavegan_tf import build_discriminator, build_generator


def test_paper_generator_has_19065345_parameters():
    assert build_generator().count_params() == 19_065_345


def test_paper_discriminator_has_17427969_parameters():
    assert build_discriminator().count_params() == 17_427_969


def test_longer_slices_use_dim_mul_32():
    # The original code's 32768/65536 variants: G starts at 32d, D ends at 32d.
    g = build_generator(slice_len=65536)
    d = build_discriminator(slice_len=65536)
    assert g.get_layer("z_project").units == 16 * 32 * 64
    assert d.get_layer("downconv_5").filters == 32 * 64
    assert 72e6 < g.count_params() < 74e6
    assert 69e6 < d.count_params() < 71e6


def test_post_processing_filter_adds_exactly_its_taps():
    base = build_generator(model_dim=4).count_params()
    filtered = build_generator(model_dim=4, post_proc_filt_len=512).count_params()
    assert filtered - base == 512


@pytest.mark.parametrize("slice_len", [16384, 32768, 65536])
@pytest.mark.parametrize("upsample", ["zeros", "nearest"])
@pytest.mark.parametrize("channels", [1, 2])
def test_output_shape_is_correct(slice_len, upsample, channels):
    g = build_generator(latent_dim=8, slice_len=slice_len, num_channels=channels,
                        model_dim=2, upsample=upsample)
    d = build_discriminator(slice_len=slice_len, num_channels=channels, model_dim=2)
    z = np.random.uniform(-1, 1, (3, 8)).astype("float32")
    audio = g(z)
    assert tuple(audio.shape) == (3, slice_len, channels)
    assert tuple(d(audio, training=True).shape) == (3, 1)


def test_generator_layer_shapes_follow_the_paper_table():
    g = build_generator(model_dim=64)
    expected = {"z_reshape": (16, 1024), "upconv_0": (64, 512), "upconv_1": (256, 256),
                "upconv_2": (1024, 128), "upconv_3": (4096, 64), "upconv_4": (16384, 1)}
    for name, shape in expected.items():
        assert tuple(g.get_layer(name).output.shape[1:]) == shape, name


def test_discriminator_layer_shapes_follow_the_paper_table():
    d = build_discriminator(model_dim=64)
    expected = {"downconv_0": (4096, 64), "downconv_1": (1024, 128),
                "downconv_2": (256, 256), "downconv_3": (64, 512),
                "downconv_4": (16, 1024), "flatten": (16384,)}
    for name, shape in expected.items():
        assert tuple(d.get_layer(name).output.shape[1:]) == shape, name


def test_phase_shuffle_follows_the_first_four_convolutions_only():
    d = build_discriminator(model_dim=2)
    names = [layer.name for layer in d.layers if layer.name.startswith("phase_shuffle")]
    assert names == [f"phase_shuffle_{i}" for i in range(4)]
    assert d.get_layer("phase_shuffle_0").rad == 2
    no_shuffle = build_discriminator(model_dim=2, phase_shuffle_rad=0)
    assert not any(layer.name.startswith("phase_shuffle") for layer in no_shuffle.layers)


def test_generator_output_lies_in_tanh_range():
    g = build_generator(latent_dim=8, model_dim=4)
    # Large weights push tanh into saturation; the output must still stay within [-1, 1].
    g.set_weights([w * 50.0 for w in g.get_weights()])
    audio = g(np.random.uniform(-1, 1, (4, 8)).astype("float32")).numpy()
    assert np.abs(audio).max() <= 1.0
    assert np.abs(audio).max() > 0.99


def test_batchnorm_adds_normalisation_layers():
    g = build_generator(model_dim=2, use_batchnorm=True)
    d = build_discriminator(model_dim=2, use_batchnorm=True)
    g_bn = [l for l in g.layers if isinstance(l, keras.layers.BatchNormalization)]
    d_bn = [l for l in d.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(g_bn) == 5  # after the dense layer and the four hidden upconvs
    assert len(d_bn) == 4  # after every conv but the first
    assert not any("bn" in l.name for l in build_generator(model_dim=2).layers)


def test_nearest_upsampling_uses_resize_then_conv():
    g = build_generator(model_dim=2, upsample="nearest")
    assert g.get_layer("upconv_0_nearest").size == 4
    assert g.get_layer("upconv_0").strides == (1,)


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (build_generator, {"slice_len": 16000}, "slice_len=16000"),
        (build_generator, {"upsample": "linear"}, "upsample='linear'"),
        (build_generator, {"model_dim": 0}, "model_dim=0"),
        (build_generator, {"post_proc_filt_len": -1}, "post_proc_filt_len"),
        (build_discriminator, {"slice_len": 1000}, "slice_len=1000"),
        (build_discriminator, {"phase_shuffle_rad": -1}, "phase_shuffle_rad"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(builder, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        builder(**kwargs)


@pytest.mark.parametrize("slice_len, last_stride", [(32768, 2), (65536, 4)])
def test_longer_slices_add_the_extra_layer_last_in_d_as_the_original(slice_len, last_stride):
    d = build_discriminator(slice_len=slice_len, model_dim=2)
    assert tuple(d.get_layer("downconv_0").output.shape[1:]) == (slice_len // 4, 2)
    assert tuple(d.get_layer("downconv_4").output.shape[1:]) == (16 * last_stride, 32)
    assert d.get_layer("downconv_5").strides == (last_stride,)
    assert tuple(d.get_layer("downconv_5").output.shape[1:]) == (16, 64)
    names = [layer.name for layer in d.layers if layer.name.startswith("phase_shuffle")]
    assert names == [f"phase_shuffle_{i}" for i in range(4)]
