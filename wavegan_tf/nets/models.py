"""WaveGAN generator and discriminator as Keras functional models (paper, Tables 2 and 3).

Shapes in the comments are per example for the paper's defaults: d = model_dim = 64,
c = num_channels = 1, slice_len = 16384. Longer slices follow the original code: the channel
multiplier is 32 instead of 16 and one extra layer is added at the end of G and of D (stride 2
for 32768 samples, stride 4 for 65536); D's phase shuffle stays after its first four layers.

Class-conditional models (``num_classes > 0``) take an int32 label ``[None]`` beside their usual
input. G concatenates a learned label embedding (:data:`LABEL_EMBEDDING_DIM` values) with z
before the dense layer. D is a projection discriminator (Miyato & Koyama, ICLR 2018): with h the
flattened features of the last convolution, ``logit = w.h + b + embed(label).h``, so the label
only enters through an inner product with what D saw in the audio.
"""

import keras
from keras import layers

from wavegan_tf.cpu.polyphase_conv import PolyphaseConv1D, PolyphaseConv1DTranspose
from wavegan_tf.nets.leaky_relu import LeakyReLU
from wavegan_tf.nets.minibatch_std import MinibatchStdDev
from wavegan_tf.nets.phase_shuffle import PhaseShuffle
from wavegan_tf.nets.spectral_heads import check_frame_lengths, spectral_logit, spectrogram_logit

SLICE_LENS = (16384, 32768, 65536)
UPSAMPLE_MODES = ("zeros", "nearest")
# D's convolutions followed by phase shuffle (the first ones), for every slice length.
_PHASE_SHUFFLED_LAYERS = 4
# Size of G's learned label embedding, concatenated with z in a conditional generator.
LABEL_EMBEDDING_DIM = 50


def _strides(slice_len):
    """Per-layer strides of G, and of D, for a supported ``slice_len``: the original code adds
    the extra layer of a longer slice as the last layer of both."""
    if slice_len == 16384:
        return (4, 4, 4, 4, 4)
    if slice_len == 32768:
        return (4, 4, 4, 4, 4, 2)
    if slice_len == 65536:
        return (4, 4, 4, 4, 4, 4)
    raise ValueError(f"slice_len must be one of {SLICE_LENS}, got slice_len={slice_len!r}")


def _dim_mul(slice_len):
    return 16 if slice_len == 16384 else 32


def check_num_classes(num_classes):
    """ValueError unless ``num_classes`` is 0 (unconditional) or an integer >= 2."""
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 0 \
            or num_classes == 1:
        raise ValueError(f"num_classes must be 0 (unconditional) or an integer >= 2, "
                         f"got num_classes={num_classes!r}")


def _label_input():
    return keras.Input((), dtype="int32", name="label")


def check_positive(**values):
    """ValueError naming the first of ``values`` (name=value) that is not an integer >= 1."""
    for name, value in values.items():
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")


def _upconv(x, filters, kernel_len, stride, upsample, name):
    """One upsampling step: a transposed conv, or nearest-neighbour resize then a conv."""
    if upsample == "zeros":
        return PolyphaseConv1DTranspose(
            filters, kernel_len, strides=stride, padding="same", name=name
        )(x)
    x = layers.UpSampling1D(stride, name=f"{name}_nearest")(x)
    return layers.Conv1D(filters, kernel_len, padding="same", name=name)(x)


def build_generator(
    latent_dim=100,
    slice_len=16384,
    num_channels=1,
    model_dim=64,
    kernel_len=25,
    upsample="zeros",
    use_batchnorm=False,
    post_proc_filt_len=0,
    num_classes=0,
):
    """Builds G: z ``[None, latent_dim]`` -> audio ``[None, slice_len, num_channels]`` in [-1, 1].

    With ``num_classes > 0`` G takes ``[z, label]``, label int32 ``[None]`` in
    ``[0, num_classes)``.

    Args:
        latent_dim: size of z (100 in the paper; z ~ U(-1, 1)).
        slice_len: output length, one of 16384, 32768, 65536.
        num_channels: audio channels of the output.
        model_dim: d, the width multiplier (64 in the paper).
        kernel_len: length of every convolution kernel (25 in the paper).
        upsample: "zeros" (transposed convolutions, the paper's WaveGAN) or "nearest"
            (nearest-neighbour upsampling then a stride-1 convolution, the paper's ablation).
        use_batchnorm: batch normalisation after the dense layer and each hidden upsampling
            layer (the paper uses none).
        post_proc_filt_len: if > 0, a learned bias-free filter of this length after tanh
            (the paper's post-processing filter used 512).
        num_classes: 0 for the paper's unconditional G; else the number of classes of a
            class-conditional G.
    """
    strides = _strides(slice_len)
    check_positive(latent_dim=latent_dim, num_channels=num_channels, model_dim=model_dim,
                    kernel_len=kernel_len)
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got upsample={upsample!r}")
    if int(post_proc_filt_len) != post_proc_filt_len or post_proc_filt_len < 0:
        raise ValueError(f"post_proc_filt_len must be >= 0, got {post_proc_filt_len!r}")
    check_num_classes(num_classes)

    dim_mul = _dim_mul(slice_len)
    inputs = x = z = keras.Input((latent_dim,), name="z")
    if num_classes:
        label = _label_input()
        inputs = [z, label]
        # [] -> [50]; [100] + [50] -> [150]. Initialised like z, U(-1, 1), so that the label
        # moves G's output as much as z does from the first step.
        embedded = layers.Embedding(
            num_classes, LABEL_EMBEDDING_DIM, name="label_embedding",
            embeddings_initializer=keras.initializers.RandomUniform(-1.0, 1.0))(label)
        x = layers.Concatenate(name="z_label")([z, embedded])
    # [100] -> [16 * 16d] -> [16, 16d]   (32d channels for the longer slices)
    x = layers.Dense(16 * dim_mul * model_dim, name="z_project")(x)
    x = layers.Reshape((16, dim_mul * model_dim), name="z_reshape")(x)
    if use_batchnorm:
        x = layers.BatchNormalization(name="z_project_bn")(x)
    x = layers.ReLU(name="z_project_relu")(x)

    # [16, 16d] -> [64, 8d] -> [256, 4d] -> [1024, 2d] -> [4096, d] -> [16384, c]
    channels = dim_mul * model_dim
    for i, stride in enumerate(strides):
        last = i == len(strides) - 1
        channels //= 2
        filters = num_channels if last else channels
        x = _upconv(x, filters, kernel_len, stride, upsample, name=f"upconv_{i}")
        if last:
            break
        if use_batchnorm:
            x = layers.BatchNormalization(name=f"upconv_{i}_bn")(x)
        x = layers.ReLU(name=f"upconv_{i}_relu")(x)
    # Outputs stay float32 under a mixed-precision policy.
    audio = layers.Activation("tanh", dtype="float32", name="tanh")(x)

    if post_proc_filt_len:
        # [16384, c] -> [16384, c], a learned FIR filter to remove periodic artefacts
        audio = layers.Conv1D(num_channels, post_proc_filt_len, padding="same", use_bias=False,
                              dtype="float32", name="post_proc_filter")(audio)
    return keras.Model(inputs, audio, name="generator")


def build_discriminator(
    slice_len=16384,
    num_channels=1,
    model_dim=64,
    kernel_len=25,
    phase_shuffle_rad=2,
    use_batchnorm=False,
    num_classes=0,
    spectral_heads=(),
    spectrogram_head=False,
    minibatch_std=False,
):
    """Builds D: audio ``[None, slice_len, num_channels]`` -> one logit per example ``[None, 1]``.

    With ``num_classes > 0`` D takes ``[audio, label]`` and is a projection discriminator (see
    the module doc): the label's learned embedding, one value per flattened feature, is
    multiplied with the features and summed into the logit.

    Phase shuffle (``phase_shuffle_rad``; 0 turns it off) follows the first four convolutions,
    as in the paper and the original code (also for the longer slices, whose fifth and sixth
    convolutions have none). It is active only when the model is called with ``training=True``.

    Off in the paper: ``spectral_heads`` (STFT frame lengths, e.g. ``(256, 1024)``) add the
    logits of :mod:`wavegan_tf.nets.spectral_heads` to D's, ``spectrogram_head`` the logit of
    that module's 2-D spectrogram critic; ``minibatch_std`` appends the batch's
    feature spread (:mod:`wavegan_tf.nets.minibatch_std`) before the last convolution.
    """
    strides = _strides(slice_len)
    spectral_heads = check_frame_lengths(spectral_heads, slice_len)
    check_positive(num_channels=num_channels, model_dim=model_dim, kernel_len=kernel_len)
    if int(phase_shuffle_rad) != phase_shuffle_rad or phase_shuffle_rad < 0:
        raise ValueError(f"phase_shuffle_rad must be >= 0, got {phase_shuffle_rad!r}")
    check_num_classes(num_classes)

    x = audio = keras.Input((slice_len, num_channels), name="audio")
    # [16384, c] -> [4096, d] -> [1024, 2d] -> [256, 4d] -> [64, 8d] -> [16, 16d]
    # (longer slices: [32768, c] -> ... -> [32, 16d] -> [16, 32d] with a last stride of 2,
    # [65536, c] -> ... -> [64, 16d] -> [16, 32d])
    for i, stride in enumerate(strides):
        if minibatch_std and i == len(strides) - 1:
            x = MinibatchStdDev(name="minibatch_std")(x)
        x = PolyphaseConv1D(model_dim * 2**i, kernel_len, strides=stride, padding="same",
                            name=f"downconv_{i}")(x)
        if use_batchnorm and i > 0:
            x = layers.BatchNormalization(name=f"downconv_{i}_bn")(x)
        x = LeakyReLU(0.2, name=f"downconv_{i}_lrelu")(x)
        if phase_shuffle_rad and i < _PHASE_SHUFFLED_LAYERS:
            x = PhaseShuffle(phase_shuffle_rad, name=f"phase_shuffle_{i}")(x)
    # [16, 16d] -> [256d] -> [1]
    x = layers.Flatten(name="flatten")(x)
    logit = layers.Dense(1, dtype="float32", name="logit")(x)
    heads = [spectral_logit(audio, n, model_dim, f"spectral_{n}") for n in spectral_heads]
    if spectrogram_head:
        heads.append(spectrogram_logit(audio, model_dim))
    if heads:
        logit = layers.Add(dtype="float32", name="logit_sum")([logit] + heads)
    if not num_classes:
        return keras.Model(audio, logit, name="discriminator")
    label = _label_input()
    # [] -> [256d]; <[256d], [256d]> -> [1]
    embedded = layers.Embedding(num_classes, x.shape[-1], dtype="float32",
                                name="label_projection")(label)
    projection = layers.Dot(axes=1, dtype="float32", name="projection")([embedded, x])
    logit = layers.Add(dtype="float32", name="conditional_logit")([logit, projection])
    return keras.Model([audio, label], logit, name="discriminator")


def check_conditioning(generator, discriminator, num_classes):
    """ValueError unless G and D take a label (a second input) exactly when ``num_classes``."""
    check_num_classes(num_classes)
    for role, model in (("generator", generator), ("discriminator", discriminator)):
        takes_label = len(getattr(model, "inputs", None) or [None]) == 2
        if takes_label != bool(num_classes):
            raise ValueError(
                f"the {role} {'takes' if takes_label else 'does not take'} a label input but "
                f"num_classes={num_classes!r}; build G and D with the same num_classes as the "
                "trainer")


def critic_features(discriminator):
    """A model sharing D's layers that returns every LeakyReLU activation of D, then its logit
    (what the feature-matching term compares)."""
    outputs = [layer.output for layer in discriminator.layers
               if isinstance(layer, LeakyReLU)]
    if not outputs:
        raise ValueError("feature_matching needs a discriminator with LeakyReLU activations")
    return keras.Model(discriminator.inputs, outputs + [discriminator.output],
                       name="critic_features")
