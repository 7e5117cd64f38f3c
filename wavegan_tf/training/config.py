"""One place for a run's settings, with the paper's defaults.

A :class:`GANConfig` is written as ``config.json`` into the training directory and read back
by resume, export and generation, so a run can always be rebuilt exactly. The CLIs take their
flag defaults from here.
"""

import dataclasses
import json
import os

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.json_files import read_json
from wavegan_tf.nets.models import build_discriminator, build_generator
from wavegan_tf.nets.specgan_models import (
    SPECGAN_KERNEL_LEN,
    SPECGAN_SLICE_LEN,
    build_audio_generator,
    build_specgan_discriminator,
    build_specgan_generator,
)
from wavegan_tf.nets.spectral_heads import check_frame_lengths
from wavegan_tf.training import losses
from wavegan_tf.training.augment import check_policies
from wavegan_tf.training.averaging import check_ema_decay
from wavegan_tf.training.gan import GANTrainer

CONFIG_FILENAME = "config.json"
# The two models of the paper: WaveGAN (audio) and SpecGAN (spectrograms, Griffin-Lim).
MODELS = ("wavegan", "specgan")
# Settings whose default differs by model: the values a new run of the model starts from
# unless they are given (GANConfig's own defaults are WaveGAN's).
MODEL_DEFAULTS = {"wavegan": {}, "specgan": {"kernel_len": SPECGAN_KERNEL_LEN, "phase_shuffle": 0}}

# Fields that fix the shapes of the weights or the meaning of the optimizer state: a resumed run
# must not change them.
ARCHITECTURE_FIELDS = (
    "model", "slice_len", "num_channels", "sample_rate", "model_dim", "latent_dim", "kernel_len",
    "phase_shuffle", "upsample", "post_proc_filt_len", "batchnorm", "loss", "conditional",
    "class_names", "spectral_heads", "spectrogram_head", "minibatch_std",
)


@dataclasses.dataclass
class GANConfig:
    """Everything needed to rebuild and continue a run. Defaults are the paper's."""

    # Audio
    slice_len: int = 16384
    sample_rate: int = 16000
    num_channels: int = 1
    # Architecture: "wavegan", or "specgan" (see MODEL_DEFAULTS for the settings whose default
    # it changes)
    model: str = "wavegan"
    model_dim: int = 64
    latent_dim: int = 100
    kernel_len: int = 25
    phase_shuffle: int = 2
    upsample: str = "zeros"
    post_proc_filt_len: int = 0
    batchnorm: bool = False
    # D's additions, off in the paper: STFT frame lengths of spectral heads beside the waveform
    # critic, a 2-D critic on the log spectrogram (both wavegan_tf.nets.spectral_heads) and the
    # minibatch standard-deviation feature.
    spectral_heads: list = dataclasses.field(default_factory=list)
    spectrogram_head: bool = False
    minibatch_std: bool = False
    # Class conditioning: labels from the data folder's class subfolders. class_names are the
    # classes in label order; None until a conditional run reads them from its data.
    conditional: bool = False
    class_names: list = None
    # Objective
    loss: str = "wgan-gp"
    n_critic: int = 5
    gp_weight: float = 10.0
    clip_value: float = 0.01
    g_learning_rate: float = 0.0
    d_learning_rate: float = 0.0
    # Adam's betas for both optimizers (None: the loss's own; Adam losses only)
    adam_beta1: float = None
    adam_beta2: float = None
    # The R1 penalty on real clips (0: off, the paper), applied every r1_every critic updates
    r1_gamma: float = 0.0
    r1_every: int = 1
    # Weight of the feature-matching term in G's loss (0: off, the paper)
    feature_matching: float = 0.0
    # Faster learning, off in the paper: G's weight average (0 = off; see wavegan_tf.training.gan) and
    # the augmentation policies of every clip D sees (see wavegan_tf.training.augment).
    ema_decay: float = 0.0
    augment: list = dataclasses.field(default_factory=list)
    # Training
    batch_size: int = 64
    seed: int = 0
    # SpecGAN: Griffin-Lim iterations turning generated spectrograms into audio (previews,
    # evaluation, export)
    griffin_lim_iters: int = 16

    def __post_init__(self):
        losses.check_loss(self.loss)
        losses.check_r1(self.loss, self.r1_gamma)
        check_ema_decay(self.ema_decay)
        self._check_adam_betas()
        if isinstance(self.r1_every, bool) or int(self.r1_every) != self.r1_every or \
                self.r1_every < 1:
            raise ValueError(f"r1_every must be an integer >= 1, got r1_every={self.r1_every!r}")
        self.spectral_heads = check_frame_lengths(self.spectral_heads, self.slice_len)
        if self.feature_matching < 0:
            raise ValueError(f"feature_matching must be >= 0 (0 = off), got "
                             f"feature_matching={self.feature_matching!r}")
        self.augment = list(check_policies(self.augment))
        for name in ("g_learning_rate", "d_learning_rate"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = the loss's default), "
                                 f"got {name}={getattr(self, name)!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got batch_size={self.batch_size!r}")
        if self.sample_rate < 1:
            raise ValueError(f"sample_rate must be >= 1, got sample_rate={self.sample_rate!r}")
        if self.class_names is not None:
            if not self.conditional:
                raise ValueError(f"class_names={self.class_names!r} needs conditional=True")
            names = [str(name) for name in self.class_names]
            if len(names) < 2 or len(set(names)) != len(names):
                raise ValueError(f"class_names must name at least 2 distinct classes, got "
                                 f"class_names={self.class_names!r}")
            self.class_names = names
        if isinstance(self.griffin_lim_iters, bool) or self.griffin_lim_iters < 1 or \
                int(self.griffin_lim_iters) != self.griffin_lim_iters:
            raise ValueError(f"griffin_lim_iters must be a positive integer, got "
                             f"griffin_lim_iters={self.griffin_lim_iters!r}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {list(MODELS)}, got model={self.model!r}")
        if self.model == "specgan":
            self._check_specgan()

    def _check_adam_betas(self):
        """ValueError naming the first Adam beta outside [0, 1) or set for an RMSProp loss."""
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {name}={value!r}")
            if value is not None and self.loss not in losses.ADAM_LOSSES:
                raise ValueError(f"{name} needs a loss trained with Adam {losses.ADAM_LOSSES}, "
                                 f"got loss={self.loss!r} (RMSProp)")

    def _check_specgan(self):
        """ValueError naming the first setting SpecGAN does not support."""
        unsupported = [
            ("slice_len", SPECGAN_SLICE_LEN, "it generates 128x128 spectrograms of 16384 samples"),
            ("num_channels", 1, "its spectrograms are mono"),
            ("phase_shuffle", 0, "its D has no phase shuffle"),
            ("post_proc_filt_len", 0, "its G has no post-processing filter"),
            ("conditional", False, "class-conditional SpecGAN is not implemented"),
            ("spectral_heads", [], "its D already reads spectrograms"),
            ("spectrogram_head", False, "its D already reads spectrograms"),
            ("minibatch_std", False, "its D has no minibatch feature"),
        ]
        for name, supported, reason in unsupported:
            if getattr(self, name) != supported:
                raise ValueError(f"model='specgan' needs {name}={supported!r} ({reason}), got "
                                 f"{name}={getattr(self, name)!r}")

    @property
    def num_classes(self):
        """The number of classes of a conditional run (0 when unconditional).

        A conditional config must know its classes (``class_names``) before models are built.
        """
        if not self.conditional:
            return 0
        if self.class_names is None:
            raise ValueError("a conditional config needs class_names (the classes of its data "
                             "folder, see wavegan_tf.audio.data.list_classes) before building models")
        return len(self.class_names)

    def build_generator(self):
        """G as trained: z to audio (WaveGAN) or to a normalised spectrogram (SpecGAN)."""
        if self.model == "specgan":
            return build_specgan_generator(
                latent_dim=self.latent_dim, model_dim=self.model_dim,
                kernel_len=self.kernel_len, upsample=self.upsample,
                use_batchnorm=self.batchnorm)
        return build_generator(
            latent_dim=self.latent_dim, slice_len=self.slice_len, num_channels=self.num_channels,
            model_dim=self.model_dim, kernel_len=self.kernel_len, upsample=self.upsample,
            use_batchnorm=self.batchnorm, post_proc_filt_len=self.post_proc_filt_len,
            num_classes=self.num_classes)

    def build_audio_generator(self, generator=None, moments=None):
        """A model from z to audio: G itself for WaveGAN; for SpecGAN G followed by Griffin-Lim
        with ``griffin_lim_iters`` and the spectrogram ``moments``
        (:func:`wavegan_tf.nets.specgan_models.build_audio_generator`). ``generator`` defaults to a
        fresh G."""
        generator = generator or self.build_generator()
        if self.model != "specgan":
            return generator
        return build_audio_generator(generator, moments, self.griffin_lim_iters)

    def build_discriminator(self):
        if self.model == "specgan":
            return build_specgan_discriminator(
                model_dim=self.model_dim, kernel_len=self.kernel_len,
                use_batchnorm=self.batchnorm)
        return build_discriminator(
            slice_len=self.slice_len, num_channels=self.num_channels, model_dim=self.model_dim,
            kernel_len=self.kernel_len, phase_shuffle_rad=self.phase_shuffle,
            use_batchnorm=self.batchnorm, num_classes=self.num_classes,
            spectral_heads=self.spectral_heads, spectrogram_head=self.spectrogram_head,
            minibatch_std=self.minibatch_std)

    def build_gan(self, jit_compile=False, micro_batches=1):
        """A compiled :class:`GANTrainer` with fresh G and D and this config's optimizers; with
        ``jit_compile`` its train step is compiled with XLA; ``micro_batches`` as in WaveGAN."""
        gan = GANTrainer(self.build_generator(), self.build_discriminator(), loss=self.loss,
                      n_critic=self.n_critic, gp_weight=self.gp_weight,
                      clip_value=self.clip_value, latent_dim=self.latent_dim, seed=self.seed,
                      num_classes=self.num_classes, micro_batches=micro_batches,
                      ema_decay=self.ema_decay, augment=self.augment,
                      r1_gamma=self.r1_gamma, r1_every=self.r1_every,
                      feature_matching=self.feature_matching)
        g_opt, d_opt = losses.default_optimizers(self.loss,
                                                 (self.adam_beta1, self.adam_beta2))
        if self.g_learning_rate:
            g_opt.learning_rate = self.g_learning_rate
        if self.d_learning_rate:
            d_opt.learning_rate = self.d_learning_rate
        gan.compile(g_optimizer=g_opt, d_optimizer=d_opt, jit_compile=jit_compile)
        return gan

    @classmethod
    def for_model(cls, model="wavegan", **values):
        """A config of ``model`` with its :data:`MODEL_DEFAULTS` under the given ``values``."""
        return cls(**{**MODEL_DEFAULTS.get(model, {}), **values, "model": model})

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        """Builds a config, naming any unknown key rather than ignoring it."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(known)}")
        return cls(**values)

    def save(self, directory):
        """Writes ``config.json`` into ``directory`` atomically (temp file, then rename)."""
        path = os.path.join(directory, CONFIG_FILENAME)
        with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def load(cls, directory):
        """Reads ``config.json`` from ``directory``; a clear error when missing or malformed."""
        path = os.path.join(directory, CONFIG_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no {CONFIG_FILENAME} in {directory!r}: not a training "
                                    "directory written by train.py")
        return cls.from_dict(read_json(path, "run configuration"))

    def architecture_conflicts(self, other):
        """Names of architecture fields whose values differ between ``self`` and ``other``."""
        return [name for name in ARCHITECTURE_FIELDS
                if getattr(self, name) != getattr(other, name)]
