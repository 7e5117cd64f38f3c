"""How a run is driven (:class:`TrainingOptions`, saved as ``training.json`` beside the
``config.json`` of what is trained) and which settings a resumed run may change
(:func:`resolve_run`): those that shape the weights, the optimizer state or the seed may not.
"""

import dataclasses
import json
import os
import time

from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.files.json_files import read_fields
from wavegan_tf.training.checkpoints import load_config
from wavegan_tf.training.config import ARCHITECTURE_FIELDS, CONFIG_FILENAME, GANConfig
from wavegan_tf.training.distribute import STRATEGIES

OPTIONS_FILENAME = "training.json"
# Keras dtype policies of --mixed_precision; "none" is plain float32.
MIXED_PRECISION_POLICIES = ("none", "mixed_bfloat16", "mixed_float16")
# The formulations of wavegan_tf.cpu.polyphase_conv a run can take, its default first.
CONV_PLANS = ("tuned", "auto", "standard", "polyphase")
# Config fields a resumed run must keep: they fix the weights' shapes, the meaning of the
# optimizer state, or (the seed) the initial weights, the RNG stream and the preview z.
FIXED_ON_RESUME = ARCHITECTURE_FIELDS + ("seed",)
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _demo_data_dir():
    """``data/demo_drums`` of the source checkout this package runs from (one with
    ``pyproject.toml`` beside the package: a clone, or an editable install), else
    ``data/demo_drums`` under the current directory (an installed package)."""
    if os.path.isfile(os.path.join(_REPO_ROOT, "pyproject.toml")):
        return os.path.join(_REPO_ROOT, "data", "demo_drums")
    return os.path.join("data", "demo_drums")


DEMO_DATA_DIR = _demo_data_dir()


@dataclasses.dataclass
class TrainingOptions:
    """How a run is driven, as opposed to what is trained (that is the GANConfig).

    Attributes:
        data_dir: folder of training audio; None means the built-in demo drum dataset
            (:data:`DEMO_DATA_DIR`, synthesised on first use).
        train_steps: total generator steps of the run, counting those before a resume.
        save_every_steps: checkpoint every this many steps (0 = only by time and at the end).
        save_every_secs: checkpoint after the first step this many seconds after the last save
            (0 = off).
        preview_every_steps: write a preview every this many steps (0 = only at the end).
        keep_checkpoints: newest checkpoints kept on disk (older ones are deleted).
        export: export the generator (wavegan_tf.serving.export) when the run reaches
            train_steps.
        strategy: the ``tf.distribute`` strategy
            (:data:`wavegan_tf.training.distribute.STRATEGIES`); ``batch_size`` is then the
            global batch over all replicas.
        tpu: the TPU name or address for strategy "tpu" (None: found by TPUClusterResolver).
        mixed_precision: the Keras dtype policy of training, one of
            :data:`MIXED_PRECISION_POLICIES` ("none" = float32). A run cannot switch
            mixed_float16 on or off on resume: its optimizers carry a loss scale.
        jit_compile: compile the train step with XLA (for GPU/TPU; slower on CPU).
        micro_batches: split each replica's batch into this many equal parts, one after the
            other, whose gradients are summed: lower peak memory, the same update
            (:class:`wavegan_tf.GANTrainer`); it must divide the batch of each replica.
        conv_plan: how the strided convolutions' products run on a CPU-only machine, one of
            :data:`CONV_PLANS`: "tuned" (each layer's products timed both ways on this
            machine once, the faster kept: :mod:`wavegan_tf.cpu.conv_tuning`), "auto" (the
            fixed rule by CPU kind), "standard" (TensorFlow's ops) or "polyphase" (matmuls).
            GPUs, TPUs and XLA take "auto", which is TensorFlow's ops there.
        eval_every_steps: score G every this many steps with ``eval_classifier`` (0 = off);
            see :mod:`wavegan_tf.eval.during_training`.
        eval_classifier: the ``.keras`` classifier of ``evaluate.py train_classifier``.
        eval_n: clips generated (from fixed z) per evaluation.
    """

    data_dir: str = None
    train_steps: int = 100000
    save_every_steps: int = 1000
    save_every_secs: float = 600.0
    preview_every_steps: int = 1000
    keep_checkpoints: int = 5
    export: bool = True
    strategy: str = "default"
    tpu: str = None
    mixed_precision: str = "none"
    jit_compile: bool = False
    micro_batches: int = 1
    conv_plan: str = "tuned"
    eval_every_steps: int = 0
    eval_classifier: str = None
    eval_n: int = 1000

    def __post_init__(self):
        for name in ("train_steps", "save_every_steps", "preview_every_steps",
                     "eval_every_steps"):
            _check_int(name, getattr(self, name), minimum=0)
        _check_int("keep_checkpoints", self.keep_checkpoints, minimum=1)
        _check_int("micro_batches", self.micro_batches, minimum=1)
        _check_int("eval_n", self.eval_n, minimum=1)
        if not self.save_every_secs >= 0:
            raise ValueError(f"save_every_secs must be >= 0, got {self.save_every_secs!r}")
        _check_choice("strategy", self.strategy, STRATEGIES)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION_POLICIES)
        _check_choice("conv_plan", self.conv_plan, CONV_PLANS)
        if self.tpu is not None and self.strategy != "tpu":
            raise ValueError(f"tpu={self.tpu!r} is only used with strategy 'tpu', got "
                             f"strategy={self.strategy!r}")
        if self.eval_every_steps and not self.eval_classifier:
            raise ValueError("eval_every_steps needs eval_classifier: the path of a classifier "
                             "trained with 'evaluate.py train_classifier'")
        if self.eval_every_steps and self.strategy == "multi_worker":
            raise ValueError("eval_every_steps is not supported with strategy 'multi_worker'; "
                             "score checkpoints with 'evaluate.py score' instead")

    def save(self, directory):
        """Writes ``training.json`` into ``directory`` atomically."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(dataclasses.asdict(self), f, indent=2, sort_keys=True)
            f.write("\n")
        return path

    @classmethod
    def load(cls, directory):
        """Reads ``training.json``; the defaults when the directory has none."""
        path = os.path.join(directory, OPTIONS_FILENAME)
        if not os.path.exists(path):
            return cls()
        values = read_fields(path, "training options", dataclasses.fields(cls))
        try:
            return _replace(cls(), values, source=path)
        except (ValueError, TypeError) as err:
            raise ValueError(f"cannot use training options {path!r}: {err}") from None


def dtype_policy_name(mixed_precision):
    """The Keras dtype policy of a ``mixed_precision`` option ("none" is plain float32)."""
    return "float32" if mixed_precision == "none" else mixed_precision


def default_train_dir():
    """``runs/<YYYYmmdd-HHMMSS>`` under the current directory, for a new run."""
    return os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))


def default_data_dir():
    """The demo drum dataset, synthesised into :data:`DEMO_DATA_DIR` on first use (a relative
    :data:`DEMO_DATA_DIR` is taken from the current directory)."""
    from wavegan_tf.audio.demo_data import ensure_demo_dataset

    return ensure_demo_dataset(DEMO_DATA_DIR)


def saved_config(train_dir):
    """The GANConfig of the run in ``train_dir``; None where no run was started there."""
    if not os.path.exists(os.path.join(train_dir, CONFIG_FILENAME)):
        return None
    return load_config(train_dir)


def resolve_run(train_dir, config_values=None, option_values=None):
    """The (config, options) of a run in ``train_dir`` with the given values applied.

    A directory without ``config.json`` starts a new run: defaults plus the given values. One
    with it continues that run: the saved values plus the given ones, where a given value of a
    :data:`FIXED_ON_RESUME` field must equal the saved value (ValueError otherwise, naming the
    field, the saved value and the given value).
    """
    config_values = dict(config_values or {})
    option_values = dict(option_values or {})
    saved = saved_config(train_dir)
    if saved is None:
        model = config_values.get("model", GANConfig.model)
        return (_replace(GANConfig.for_model(model), config_values, source="config"),
                _replace(TrainingOptions(), option_values, source="options"))
    conflicts = [f"{name}: saved {getattr(saved, name)!r}, given {value!r}"
                 for name, value in sorted(config_values.items())
                 if name in FIXED_ON_RESUME and value != getattr(saved, name)]
    if conflicts:
        raise ValueError(
            f"{train_dir!r} holds a run with different settings that cannot change on resume "
            f"({'; '.join(conflicts)}); drop these flags to continue that run, or choose a new "
            "train_dir")
    saved_options = TrainingOptions.load(train_dir)
    given_policy = option_values.get("mixed_precision", saved_options.mixed_precision)
    if "mixed_float16" in (given_policy, saved_options.mixed_precision) and \
            given_policy != saved_options.mixed_precision:
        raise ValueError(
            f"{train_dir!r} was trained with mixed_precision={saved_options.mixed_precision!r}; "
            f"it cannot resume with mixed_precision={given_policy!r} because mixed_float16 "
            "optimizers carry a loss scale that the others do not. Drop the flag to continue, "
            "or choose a new train_dir")
    return (_replace(saved, config_values, source="config"),
            _replace(saved_options, option_values, source="options"))


def _replace(settings, values, source):
    """``settings`` with ``values`` set, naming unknown keys instead of ignoring them."""
    known = {f.name for f in dataclasses.fields(settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {source} keys {unknown}; known keys: {sorted(known)}")
    return dataclasses.replace(settings, **values)


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {name}={value!r}")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
