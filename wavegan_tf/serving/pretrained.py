"""Pretrained models that ship inside the package, loadable by name with no training and no
network: ``pretrained:NAME`` wherever a model path is taken (generate.py --model, --web,
--tflite) and :func:`load` in code.

Each model is a folder of ``wavegan_tf/pretrained/``: ``config.json`` (the run's
:class:`~wavegan_tf.training.config.GANConfig`), ``generator.npz`` (the weights of the model
from z to audio, in order, stored as float16 to keep the package small; SpecGAN's spectrogram
moments are among them) and ``model_card.json`` (data, command, steps, minutes, machine, scores,
licence, and the audio error of the float16 storage). :func:`write` makes such a folder; the
command ``python -m wavegan_tf.cli.pack_pretrained`` packs one from a run or an export.
"""

import json
import os

import numpy as np

from wavegan_tf.files.atomic_files import atomic_output_dir
from wavegan_tf.files.json_files import read_json
from wavegan_tf.nets.latent import sample_z
from wavegan_tf.training.checkpoints import load_config
from wavegan_tf.training.config import CONFIG_FILENAME

PREFIX = "pretrained:"
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "pretrained")
CARD_FILENAME = "model_card.json"
WEIGHTS_FILENAME = "generator.npz"
STORAGE_DTYPE = np.float16
# Clips compared between the float32 weights and their float16 storage when packing.
STORAGE_CHECK_CLIPS = 16


def is_pretrained(spec):
    """Whether ``spec`` names a pretrained model (``pretrained:NAME``)."""
    return isinstance(spec, str) and spec.startswith(PREFIX)


def names(root=PRETRAINED_DIR):
    """The names of the pretrained models in ``root``, sorted."""
    if not os.path.isdir(root):
        return []
    return sorted(name for name in os.listdir(root)
                  if os.path.isfile(os.path.join(root, name, CARD_FILENAME)))


def folder(name, root=PRETRAINED_DIR):
    """The folder of the pretrained model ``name`` (with or without ``pretrained:``); ValueError
    listing the known names for an unknown one."""
    name = name[len(PREFIX):] if is_pretrained(name) else name
    known = names(root)
    if name not in known:
        raise ValueError(f"unknown pretrained model {name!r}; known: "
                         f"{', '.join(known) or 'none'} (python generate.py --list_pretrained)")
    return os.path.join(root, name)


def card(name, root=PRETRAINED_DIR):
    """The model card of ``name`` as a dict."""
    return read_json(os.path.join(folder(name, root), CARD_FILENAME), "model card")


def load(name, root=PRETRAINED_DIR):
    """``(config, generator, step)`` of the pretrained model ``name``: the generator is a Keras
    model from z to audio (float32 weights), as
    :func:`wavegan_tf.training.checkpoints.load_generator` gives for a training directory."""
    path = folder(name, root)
    info = card(name, root)
    steps = info.get("steps") if isinstance(info, dict) else None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"model card {os.path.join(path, CARD_FILENAME)!r} has no 'steps' "
                         f"count (got {steps!r}): the pretrained model {name!r} is damaged")
    config = load_config(path)
    generator = config.build_audio_generator(config.build_generator(), None)
    weights_path = os.path.join(path, WEIGHTS_FILENAME)
    try:
        with np.load(weights_path, allow_pickle=False) as stored:
            weights = [stored[key].astype(np.float32) for key in sorted(stored.files)]
    except Exception as err:  # noqa: BLE001 -- a damaged archive fails in many ways
        raise ValueError(f"cannot read {weights_path!r}: {err}") from None
    expected = [w.shape for w in generator.get_weights()]
    if [w.shape for w in weights] != expected:
        raise ValueError(f"pretrained model {name!r}: {WEIGHTS_FILENAME} does not fit the "
                         f"generator of its {CONFIG_FILENAME}")
    generator.set_weights(weights)
    return config, generator, steps


def write(name, config, generator, step, card_fields, root=PRETRAINED_DIR):
    """Writes ``generator`` (a Keras model from z to audio of the run ``config``, trained for
    ``step`` steps) as the pretrained model ``name`` into ``root``, replacing an older one
    atomically; returns its folder. ``card_fields`` go into the model card beside the step, the
    family, the size and the measured storage error (the largest absolute audio difference,
    and the signal-to-error ratio in dB, of float16 against float32 weights on fixed z)."""
    weights = generator.get_weights()
    stored = [w.astype(STORAGE_DTYPE) for w in weights]
    z = sample_z(STORAGE_CHECK_CLIPS, config.latent_dim, 0)
    reference = np.asarray(generator(z))
    generator.set_weights([w.astype(np.float32) for w in stored])
    rounded = np.asarray(generator(z))
    error = float(np.max(np.abs(reference - rounded)))
    snr = float(10 * np.log10(np.sum(reference ** 2) / max(np.sum((reference - rounded) ** 2),
                                                            1e-30)))
    model_card = {**card_fields, "name": name, "model": config.model,
                  "model_dim": config.model_dim, "slice_len": config.slice_len,
                  "sample_rate": config.sample_rate, "steps": step,
                  "parameters": int(sum(w.size for w in weights)),
                  "storage": {"dtype": np.dtype(STORAGE_DTYPE).name,
                              "max_abs_audio_error": error, "audio_snr_db": snr}}
    with atomic_output_dir(os.path.join(root, name)) as tmp:
        config.save(tmp)
        np.savez_compressed(os.path.join(tmp, WEIGHTS_FILENAME),
                            **{f"w{i:03d}": w for i, w in enumerate(stored)})
        with open(os.path.join(tmp, CARD_FILENAME), "w", encoding="utf-8") as f:
            json.dump(model_card, f, indent=2, sort_keys=True)
            f.write("\n")
    return os.path.join(root, name)


def describe(name, root=PRETRAINED_DIR):
    """A few lines about ``name`` for ``generate.py --list_pretrained``."""
    info = card(name, root)
    if not isinstance(info, dict):
        raise ValueError(f"model card {os.path.join(folder(name, root), CARD_FILENAME)!r} is "
                         "not a JSON object")
    info = {key: info.get(key, "?") for key in ("model", "model_dim", "slice_len",
                                                "sample_rate", "steps")} | info
    scores = info.get("scores", {}) if isinstance(info.get("scores"), dict) else {}
    lines = [f"pretrained:{name}: {info.get('description', '')}".rstrip(),
             f"  {info['model']} d={info['model_dim']}, {info['slice_len']} samples at "
             f"{info['sample_rate']} Hz, {info['steps']} steps"
             + (f" ({info['minutes']:.0f} minutes)"
                if isinstance(info.get("minutes"), (int, float)) else ""),
             f"  data: {info.get('data', '?')}; licence: {info.get('licence', '?')}"]
    if scores:
        lines.append("  scores: " + ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else
                                              f"{k}={v}" for k, v in sorted(scores.items())))
    return "\n".join(lines)
