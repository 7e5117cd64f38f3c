"""Converting a checkpoint of the original TF1 WaveGAN (chrisdonahue/wavegan) into a training
directory of this project.

The original's ``train_wavegan.py`` saves ``model.ckpt-N`` files of its whole training graph
and writes its settings to ``args.txt`` (one ``name,value`` line per argparse flag).
:func:`convert_checkpoint` reads such a checkpoint with ``tf.train.load_checkpoint`` (no TF1
graph is built), takes the settings from ``args.txt`` and overrides (the original's defaults
for the rest), checks every variable's shape against them, copies the weights into the
Keras G and D built from the matching :class:`~wavegan_tf.training.config.GANConfig`, and writes a
training directory (``config.json``, ``training.json``, ``checkpoints/ckpt-N``) that
``generate.py``, the exporter, ``evaluate.py`` and ``train.py`` read like any other.

Where the original's variables live (``tf.layers`` names inside ``G/`` and ``D/`` scopes):

* G: ``G/z_project/dense/{kernel,bias}``; ``G/upconv_<i>/conv2d_transpose/{kernel,bias}`` for
  i = 0..4 (0..5 for 32768 and 65536 samples), kernels ``[1, kernel_len, out, in]`` (the 1-D
  transposed convolutions run as 2-D ones on a height-1 image), or
  ``G/upconv_<i>/conv1d/{kernel,bias}`` with nearest-neighbour upsampling (``nn``);
  ``G/pp_filt/conv1d/kernel`` ``[pp_len, 1, 1]`` for the post-processing filter.
* D: ``D/downconv_<i>/conv1d/{kernel,bias}`` and ``D/output/dense/{kernel,bias}``.
* Batch norm (``wavegan_batchnorm``): ``<scope>/batch_normalization/{gamma,beta,moving_mean,
  moving_variance}`` in ``G/z_project`` and every ``G/upconv_<i>`` but the last (after the
  dense layer or convolution, before the ReLU), and in every ``D/downconv_<i>`` but the first.
  The original's D always normalises with the statistics of the batch, and its moving
  statistics were never updated; our D does the same when called with ``training=True`` (as
  the trainer calls it), so the checkpoint's moving statistics are copied unchanged.
* Optimizer slots: ``<variable>/Adam`` and ``<variable>/Adam_1`` (wgan-gp, dcgan) or
  ``<variable>/RMSProp`` and ``<variable>/RMSProp_1`` (wgan, lsgan); ``global_step`` counts
  generator updates.

Optimizer slots are copied when every slot is there (step counters from ``global_step``); a
checkpoint without them, or without D, converts with fresh optimizers (and a fresh D).

The output directory is written beside ``out_dir`` under a temporary name and renamed into
place only when everything succeeded; an existing non-empty ``out_dir`` is never touched.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf
from absl import logging

from wavegan_tf.files.atomic_files import atomic_output_dir, atomic_output_file
from wavegan_tf.serving.tf1_checks import checked_step
from wavegan_tf.training import checkpoints
from wavegan_tf.training.config import GANConfig
from wavegan_tf.training.settings import TrainingOptions

ARGS_FILENAME = "args.txt"
PROVENANCE_FILENAME = "converted_from.json"

# The original's settings that shape the converted run, with train_wavegan.py's defaults.
# Settings of the first release that it did not have yet keep these values.
ORIGINAL_DEFAULTS = {
    "data_dir": None,
    "data_num_channels": 1,
    "data_sample_rate": 16000,
    "data_slice_len": 16384,
    "train_batch_size": 64,
    "wavegan_batchnorm": False,
    "wavegan_dim": 64,
    "wavegan_disc_nupdates": 5,
    "wavegan_disc_phaseshuffle": 2,
    "wavegan_genr_pp": False,
    "wavegan_genr_pp_len": 512,
    "wavegan_genr_upsample": "zeros",
    "wavegan_kernel_len": 25,
    "wavegan_latent_dim": 100,
    "wavegan_loss": "wgan-gp",
}
# The original's --wavegan_genr_upsample values -> our upsample modes.
UPSAMPLE_MODES = {"zeros": "zeros", "nn": "nearest"}
# Per loss: the original's optimizer slot suffixes -> the Keras optimizer variable they become.
_SLOTS = {
    "wgan-gp": {"Adam": "momentum", "Adam_1": "velocity"},
    "dcgan": {"Adam": "momentum", "Adam_1": "velocity"},
    "wgan": {"RMSProp": "velocity"},
    "lsgan": {"RMSProp": "velocity"},
}
_ALL_SLOT_SUFFIXES = ("Adam", "Adam_1", "RMSProp", "RMSProp_1")
_BATCHNORM_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclasses.dataclass
class ConversionResult:
    """What :func:`convert_checkpoint` wrote.

    Attributes:
        out_dir: the new training directory.
        checkpoint: the prefix of the original checkpoint that was read.
        step: the generator step it was saved at (our step counter continues from it).
        config: the GANConfig of the converted run.
        discriminator: "converted", or "fresh" for a checkpoint without D.
        optimizer_state: "converted", or "fresh" when the checkpoint has no optimizer slots.
    """

    out_dir: str
    checkpoint: str
    step: int
    config: GANConfig
    discriminator: str
    optimizer_state: str


def read_args_txt(path):
    """The ``name -> value text`` lines of the original's ``args.txt``.

    Each line is ``name,value`` (the value may itself contain commas, e.g. a path). ValueError
    names the file and line when a line has no comma.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the original's settings {path!r}: {err}") from err
    values = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if "," not in line:
            raise ValueError(f"{path!r} line {number} is not 'name,value': {line!r}")
        name, value = line.split(",", 1)
        values[name.strip()] = value.strip()
    return values


def parse_arg(text):
    """``(name, value text)`` of one ``name,value`` setting such as ``wavegan_dim,32``."""
    name, comma, value = text.partition(",")
    if not comma or name.strip() not in ORIGINAL_DEFAULTS:
        raise ValueError(
            f"a setting must be 'name,value' with a name of the original's train_wavegan.py "
            f"that the conversion uses, got {text!r}; names: {sorted(ORIGINAL_DEFAULTS)}")
    return name.strip(), value.strip()


def original_settings(args_txt=None, overrides=None):
    """The original's settings: its defaults, then ``args.txt`` (when given), then
    ``overrides`` (``name -> value text``), each value parsed to the type of its default.

    Names of ``args.txt`` that do not shape the converted run (``mode``, ``incept_*``,
    ``data_first_slice``, ...) are ignored; unknown override names are a ValueError.
    """
    texts = {}
    if args_txt is not None:
        texts.update((name, value) for name, value in read_args_txt(args_txt).items()
                     if name in ORIGINAL_DEFAULTS)
    for name, value in (overrides or {}).items():
        parse_arg(f"{name},{value}")
        texts[name] = value
    settings = dict(ORIGINAL_DEFAULTS)
    for name, text in texts.items():
        source = f"{args_txt!r}" if name not in (overrides or {}) else "the given settings"
        settings[name] = _parse_value(name, text, source)
    return settings


def config_from_settings(settings):
    """The GANConfig of a run of the original trained with ``settings``."""
    upsample = settings["wavegan_genr_upsample"]
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"wavegan_genr_upsample must be one of {sorted(UPSAMPLE_MODES)}, got "
                         f"{upsample!r}")
    values = dict(
        slice_len=settings["data_slice_len"], sample_rate=settings["data_sample_rate"],
        num_channels=settings["data_num_channels"], model_dim=settings["wavegan_dim"],
        latent_dim=settings["wavegan_latent_dim"], kernel_len=settings["wavegan_kernel_len"],
        phase_shuffle=settings["wavegan_disc_phaseshuffle"], upsample=UPSAMPLE_MODES[upsample],
        post_proc_filt_len=settings["wavegan_genr_pp_len"] if settings["wavegan_genr_pp"] else 0,
        batchnorm=settings["wavegan_batchnorm"], loss=settings["wavegan_loss"],
        n_critic=settings["wavegan_disc_nupdates"], batch_size=settings["train_batch_size"])
    return GANConfig(**values)


def find_checkpoint(path):
    """The checkpoint prefix of ``path``: a prefix (``.../model.ckpt-N``) or a train dir (its
    newest checkpoint). FileNotFoundError / ValueError naming ``path`` otherwise."""
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(f"no TensorFlow checkpoint in the folder {path!r}: pass the "
                                    "checkpoint itself, e.g. TRAIN_DIR/model.ckpt-N")
        return prefix
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist (expected {path}.index "
                                "and its data files)")
    return path[:-len(".index")] if path.endswith(".index") else path


def read_checkpoint(prefix):
    """``{name: array}`` of every tensor of the checkpoint ``prefix``.

    ValueError naming ``prefix`` when it is not a TensorFlow checkpoint or cannot be read back.
    """
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    except Exception as err:  # noqa: BLE001 -- the reader fails with many exception types
        reason = (str(err).strip() or type(err).__name__).splitlines()[0]
        raise ValueError(f"{prefix!r} is not a readable TensorFlow checkpoint ({reason})") \
            from err


def generator_variables(config):
    """``(original name, layer, attribute)`` of every variable of the original's G."""
    conv = "conv2d_transpose" if config.upsample == "zeros" else "conv1d"
    num_layers = 5 if config.slice_len == 16384 else 6
    names = _dense("G/z_project/dense", "z_project")
    if config.batchnorm:
        names += _batchnorm("G/z_project", "z_project_bn")
    for i in range(num_layers):
        names += _dense(f"G/upconv_{i}/{conv}", f"upconv_{i}")
        if config.batchnorm and i < num_layers - 1:
            names += _batchnorm(f"G/upconv_{i}", f"upconv_{i}_bn")
    if config.post_proc_filt_len:
        names.append(("G/pp_filt/conv1d/kernel", "post_proc_filter", "kernel"))
    return names


def discriminator_variables(config):
    """``(original name, layer, attribute)`` of every variable of the original's D."""
    num_layers = 5 if config.slice_len == 16384 else 6
    names = []
    for i in range(num_layers):
        names += _dense(f"D/downconv_{i}/conv1d", f"downconv_{i}")
        if config.batchnorm and i > 0:
            names += _batchnorm(f"D/downconv_{i}", f"downconv_{i}_bn")
    return names + _dense("D/output/dense", "logit")


def convert_checkpoint(checkpoint, out_dir, args_txt=None, overrides=None):
    """Converts the original's checkpoint ``checkpoint`` into the training directory ``out_dir``.

    Args:
        checkpoint: ``OLD_TRAIN_DIR/model.ckpt-N`` (or ``OLD_TRAIN_DIR`` for its newest one).
        out_dir: the training directory to create; it must not exist or be empty.
        args_txt: the original's ``args.txt``; None uses the one beside the checkpoint when it
            is there (else the original's defaults and ``overrides``).
        overrides: ``{original name: value text}`` applied over ``args.txt``.

    Returns:
        A :class:`ConversionResult`.

    Raises:
        FileNotFoundError: no checkpoint at ``checkpoint``.
        ValueError: not a readable checkpoint, a bad setting, a variable missing or of a shape
            the settings do not give (named), variables the settings do not use, an ``out_dir``
            that already holds files. Nothing is written to ``out_dir`` then.
    """
    prefix = find_checkpoint(checkpoint)
    if args_txt is None:
        beside = os.path.join(os.path.dirname(os.path.abspath(prefix)), ARGS_FILENAME)
        args_txt = beside if os.path.isfile(beside) else None
    settings = original_settings(args_txt, overrides)
    config = config_from_settings(settings)
    _refuse_existing(out_dir)
    tensors = read_checkpoint(prefix)
    step = checked_step(tensors, prefix, _ALL_SLOT_SUFFIXES)
    with_d = any(name.startswith("D/") for name in tensors)
    if not with_d:
        logging.warning("Checkpoint %s holds no discriminator: the converted run gets a fresh D "
                        "and fresh optimizers.", prefix)
    plan = generator_variables(config) + (discriminator_variables(config) if with_d else [])
    gan = config.build_gan()
    models = {"G": gan.generator, "D": gan.discriminator}
    _check_variables(tensors, plan, models, config, prefix, args_txt)
    for name, layer, attribute in plan:
        variable = _keras_variable(models, name, layer, attribute)
        variable.assign(tensors[name].reshape(variable.shape))
    optimizer_state = "fresh"
    if with_d and _copy_optimizer_state(gan, tensors, plan, models, config, step, prefix):
        optimizer_state = "converted"
    result = ConversionResult(out_dir=out_dir, checkpoint=prefix, step=step, config=config,
                              discriminator="converted" if with_d else "fresh",
                              optimizer_state=optimizer_state)
    _write_train_dir(gan, result, settings, args_txt)
    return result


def _dense(scope, layer):
    return [(f"{scope}/kernel", layer, "kernel"), (f"{scope}/bias", layer, "bias")]


def _batchnorm(scope, layer):
    return [(f"{scope}/batch_normalization/{name}", layer, name)
            for name in _BATCHNORM_VARIABLES]


def _parse_value(name, text, source):
    """``text`` as the type of the original's default for ``name``."""
    default = ORIGINAL_DEFAULTS[name]
    if text == "None" and default is None:
        return None
    if isinstance(default, bool):
        if text not in ("True", "False"):
            raise ValueError(f"{name} must be True or False, got {text!r} in {source}")
        return text == "True"
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {text!r} in {source}") from None
    return text


def _refuse_existing(out_dir):
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise ValueError(f"--out {out_dir!r} already exists and is not empty; choose a new "
                         "folder for the converted run")


def _keras_variable(models, name, layer, attribute):
    return getattr(models[name[0]].get_layer(layer), attribute)


def _check_variables(tensors, plan, models, config, prefix, args_txt):
    """ValueError naming the variables that are missing, of the wrong shape, or unused."""
    settings_text = (f"the settings (from {args_txt!r} and the given ones)" if args_txt else
                     "the settings (the original's defaults and the given ones; no args.txt "
                     "was found beside the checkpoint)")
    missing = [name for name, _, _ in plan if name not in tensors]
    if missing:
        raise ValueError(
            f"checkpoint {prefix!r} has no variable {missing[0]!r}"
            + (f" (nor {len(missing) - 1} more: {missing[1:4]}...)" if len(missing) > 1 else "")
            + f", which {settings_text} need; check wavegan_batchnorm, wavegan_genr_upsample, "
            "wavegan_genr_pp and data_slice_len, or whether the checkpoint is complete")
    for name, layer, attribute in plan:
        expected = _original_shape(name, _keras_variable(models, name, layer, attribute))
        found = tuple(np.shape(tensors[name]))
        if found != expected:
            raise ValueError(
                f"variable {name!r} of checkpoint {prefix!r} has shape {list(found)}, but "
                f"{settings_text} give {list(expected)} (slice_len={config.slice_len}, "
                f"model_dim={config.model_dim}, kernel_len={config.kernel_len}, "
                f"latent_dim={config.latent_dim}, num_channels={config.num_channels}, "
                f"post_proc_filt_len={config.post_proc_filt_len}); set the original's "
                "wavegan_dim, wavegan_kernel_len, wavegan_latent_dim, data_slice_len, "
                "data_num_channels or wavegan_genr_pp_len as the model was trained")
    known = {name for name, _, _ in plan}
    unused = sorted(name for name in tensors
                    if name.startswith(("G/", "D/")) and name not in known
                    and name.rsplit("/", 1)[-1] not in _ALL_SLOT_SUFFIXES)
    if unused:
        raise ValueError(
            f"checkpoint {prefix!r} has variables that {settings_text} do not use: "
            f"{unused[:4]}{'...' if len(unused) > 4 else ''}; check wavegan_batchnorm, "
            "wavegan_genr_upsample, wavegan_genr_pp and data_slice_len (a checkpoint of another "
            "model than WaveGAN cannot be converted)")


def _original_shape(name, variable):
    """The shape the original stores ``variable`` with: transposed convolutions as 2-D ones."""
    shape = tuple(variable.shape)
    return (1,) + shape if "/conv2d_transpose/kernel" in name else shape


def _copy_optimizer_state(gan, tensors, plan, models, config, step, prefix):
    """Copies the original's optimizer slots into G's and D's optimizers; False (nothing
    copied) when the checkpoint has none. ValueError when they are incomplete or belong to the
    other optimizer than ``config.loss`` uses."""
    slots = _SLOTS[config.loss]
    present = {name.rsplit("/", 1)[-1] for name in tensors
               if name.startswith(("G/", "D/"))
               and name.rsplit("/", 1)[-1] in _ALL_SLOT_SUFFIXES}
    if not present:
        logging.warning("Checkpoint %s has no optimizer slots: the converted run starts with "
                        "fresh optimizers.", prefix)
        return False
    if not present & set(slots):
        raise ValueError(
            f"checkpoint {prefix!r} holds {sorted(present)} optimizer slots, but "
            f"loss={config.loss!r} trains with {sorted(slots)}; set the original's "
            "wavegan_loss as the model was trained")
    optimizers = {"G": gan.g_optimizer, "D": gan.d_optimizer}
    by_path = {variable.path: variable for opt in optimizers.values()
               for variable in opt.variables}
    copies = []
    for name, layer, attribute in plan:
        variable = _keras_variable(models, name, layer, attribute)
        if not variable.trainable:
            continue
        optimizer = optimizers[name[0]]
        for suffix, slot in slots.items():
            slot_name = f"{name}/{suffix}"
            if slot_name not in tensors:
                raise ValueError(f"checkpoint {prefix!r} has no optimizer slot {slot_name!r}; "
                                 "its optimizer state is incomplete")
            path = f"{optimizer.name}/{variable.path.replace('/', '_')}_{slot}"
            copies.append((by_path[path], tensors[slot_name].reshape(variable.shape)))
    for target, value in copies:
        target.assign(value)
    gan.g_optimizer.iterations.assign(step)
    gan.d_optimizer.iterations.assign(step * config.n_critic)
    return True


def _write_train_dir(gan, result, settings, args_txt):
    """Writes the training directory of ``result`` atomically (see the module doc)."""
    out_dir = result.out_dir
    with atomic_output_dir(out_dir) as tmp:
        _refuse_existing(out_dir)
        result.config.save(tmp)
        TrainingOptions(data_dir=settings["data_dir"]).save(tmp)
        step = tf.Variable(result.step, dtype=tf.int64, name="step")
        manager = tf.train.CheckpointManager(
            checkpoints.make_checkpoint(gan, step), checkpoints.checkpoint_dir(tmp),
            max_to_keep=1, checkpoint_name=checkpoints.CHECKPOINT_PREFIX)
        manager.save(checkpoint_number=result.step)
        provenance = dict(checkpoint=os.path.abspath(result.checkpoint),
                          args_txt=os.path.abspath(args_txt) if args_txt else None,
                          step=result.step, discriminator=result.discriminator,
                          optimizer_state=result.optimizer_state, original_settings=settings)
        with atomic_output_file(os.path.join(tmp, PROVENANCE_FILENAME)) as path, \
                open(path, "w", encoding="utf-8") as f:
            json.dump(provenance, f, indent=2, sort_keys=True)
            f.write("\n")
