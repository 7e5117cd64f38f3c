"""Learning curves: how good G sounds against training steps and minutes, for several variants.

A training run given a :class:`CurveTracker` (:func:`wavegan_tf.runs.train_curve`) trains one
configuration from its seed for a fixed :class:`Budget` (steps, minutes or both: whichever ends
first) and scores G every ``eval_every`` steps, and once before the first step, with a
:class:`CurveScorer`. Variants of one comparison (:func:`variant_configs`) differ only in the
settings they name: the same seed gives them the same initial weights and data order. The
minutes are those of training alone; scoring pauses the clock.

A :class:`CurveScorer` always measures the model-free :mod:`~wavegan_tf.eval.audio_stats` of the
generated clips; given a classifier (labelled data) it adds the project's evaluation
(:mod:`wavegan_tf.eval.scoring`): inception score, FID, |D|self, |D|train, NDB against the
reference clips, the number of classes the classifier finds among the clips, and the label
accuracy of a conditional G. :meth:`CurveScorer.real_scores` gives the same figures for real
clips: the ceiling of each curve.
"""

import dataclasses
import os
import time

import keras
import numpy as np
import soxr

from wavegan_tf.eval import audio_stats, labelled, metrics, scoring
from wavegan_tf.eval import classifier as classifier_lib
from wavegan_tf.eval.features import fit_batch
from wavegan_tf.nets.latent import sample_z
from wavegan_tf.training import recipes
from wavegan_tf.training.callbacks import MetricSteps
from wavegan_tf.training.config import GANConfig

BASELINE = "baseline"
# The settings each variant part turns on; parts join with "+", e.g. "ema+augment". "specgan"
# trains the paper's SpecGAN instead of WaveGAN (its own model defaults apply); "d<N>" and
# "b<N>" set the model dim and the batch size, to compare sizes at an equal budget.
VARIANT_PARTS = ("ema", "augment", "specgan", "fast")
SIZE_PARTS = {"d": "model_dim", "b": "batch_size"}
SCORE_BATCH = 64


def variant_configs(names, ema_decay, augment):
    """``{name: GANConfig overrides}`` for variant names such as ``baseline``, ``ema``,
    ``augment``, ``specgan``, ``d32`` or ``specgan+ema+d32``; ValueError naming ``variants``
    for unknown or repeated names. Build each config with ``GANConfig.for_model`` so that
    a ``model`` override brings that model's defaults."""
    names = [str(n).strip() for n in names]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"variants must name at least one variant, each once, got "
                         f"variants={names!r}")
    settings = {"ema": {"ema_decay": ema_decay}, "augment": {"augment": list(augment)},
                "specgan": {"model": "specgan"}, "fast": {"recipe": "fast"}}
    configs = {}
    for name in names:
        parts = [] if name == BASELINE else name.split("+")
        found = [settings.get(p) or _size_setting(p) or _field_setting(p) for p in parts]
        keys = [k for setting in found if setting for k in setting]
        if not all(found) or len(set(keys)) != len(keys):
            raise ValueError(f"variants: unknown variant {name!r}; use {BASELINE!r} or parts of "
                             f"{list(VARIANT_PARTS)}, d<model dim>, b<batch size>, "
                             f"<config field>=<value>, each once, joined by '+' (e.g. "
                             f"'ema+augment', 'specgan+d32', 'fast+ema')")
        configs[name] = _with_recipe({k: v for setting in found for k, v in setting.items()})
    return configs


def _with_recipe(values):
    """``values`` over the recipe they name (``"recipe"``), without that key."""
    values = dict(values)
    return recipes.with_recipe(values.pop("recipe", "paper"), values)


def _field_setting(part):
    """``{field: value}`` for a ``field=value`` part naming a GANConfig field, the value parsed
    as the field's default is typed (lists: ``a:b`` or ``a,b``, since ``--variants`` itself is
    split on commas); else None."""
    name, sep, text = part.partition("=")
    fields = {f.name for f in dataclasses.fields(GANConfig)}
    if not sep or name not in fields:
        return None
    current = getattr(GANConfig(), name)
    try:
        if isinstance(current, bool):
            value = {"true": True, "false": False}[text.lower()]
        elif isinstance(current, list):
            items = text.replace(":", ",").split(",")
            value = [int(v) if v.lstrip("-").isdigit() else v for v in items if v]
        elif isinstance(current, int):
            value = int(text)
        elif isinstance(current, float) or current is None:
            value = float(text)
        else:
            value = text
    except (KeyError, ValueError):
        return None
    return {name: value}


def _size_setting(part):
    """``{"model_dim": N}`` for ``dN``, ``{"batch_size": N}`` for ``bN`` (N >= 1), else None."""
    key, digits = part[:1], part[1:]
    if key in SIZE_PARTS and digits.isdigit() and int(digits) >= 1:
        return {SIZE_PARTS[key]: int(digits)}
    return None


def labelled_layout(data_dir):
    """``(training folder, class names)`` of a labelled folder (``DIR/<class>/`` or
    ``DIR/{train,valid,test}/<class>/``, whose ``train/`` is trained on), else
    ``(data_dir, None)``."""
    train_dir = os.path.join(data_dir, "train") if labelled.has_split_folders(data_dir) \
        else data_dir
    try:
        return train_dir, labelled.class_folders(train_dir)
    except ValueError:
        return data_dir, None


def ensure_classifier(path, data_dir, *, epochs, filters, slice_len, sample_rate, seed=0):
    """The path of a classifier trained on ``data_dir`` with these settings, trained first
    when none is cached: ``path`` itself, or ``<path without .keras>-<key>.keras`` beside it.

    The cache is keyed on every setting (data folder, epochs, filters, slice_len, sample_rate,
    seed) as the classifier's sidecar records them, so a classifier is trained once and reused
    only by comparisons that would train the same one. A classifier of other settings at
    ``path`` is kept; the one for these settings goes beside it, ``key`` a hash of them.
    """
    import hashlib
    import json

    wanted = dict(data_dir=os.path.abspath(data_dir), max_epochs=int(epochs),
                  filters=int(filters), slice_len=int(slice_len), sample_rate=int(sample_rate),
                  seed=int(seed))
    key = hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:10]
    stem = path[:-len(classifier_lib.KERAS_SUFFIX)] \
        if path.endswith(classifier_lib.KERAS_SUFFIX) else path
    candidate = path
    for candidate in (path, f"{stem}-{key}{classifier_lib.KERAS_SUFFIX}"):
        if not os.path.isfile(candidate):
            break
        try:
            with open(classifier_lib.sidecar_path(candidate), encoding="utf-8") as f:
                recorded = json.load(f)
        except (OSError, ValueError):
            recorded = {}
        if isinstance(recorded, dict) and all(recorded.get(k) == v for k, v in wanted.items()):
            return candidate
    classifier_lib.train_classifier(data_dir, candidate, epochs=epochs, filters=filters,
                                    slice_len=slice_len, sample_rate=sample_rate, seed=seed,
                                    verbose=0)
    return candidate


class CurveScorer:
    """Scores a generator on ``n`` fixed z (see the module doc).

    Args:
        real_clips: real training clips ``[m, time, channels]`` for the real statistics.
        sample_rate: of the generator and the real clips.
        n: clips generated per score.
        seed: of the z (and the held-out split of an unsplit labelled folder).
        classifier_path: a classifier of :mod:`wavegan_tf.eval.classifier`, or None for the
            statistics alone.
        reference_dir: the labelled folder (either layout): reference and held-out real clips,
            as ``evaluate.py score --reference`` takes them.
        class_names: the classes of a conditional G (clips cycle through them), else None.
    """

    def __init__(self, real_clips, sample_rate, n, seed=0, classifier_path=None,
                 reference_dir=None, class_names=None):
        self.real_clips = np.asarray(real_clips)
        self.sample_rate = int(sample_rate)
        self.n = int(n)
        self.seed = seed
        self.splits = min(metrics.DEFAULT_SPLITS, self.n)
        self.class_names = class_names
        self.labels = None if class_names is None else scoring.cycled_labels(
            self.n, len(class_names))
        self.classifier = None
        if classifier_path is not None:
            self.classifier = classifier_lib.load_classifier(classifier_path)
            ref_paths, held_paths, _ = scoring.reference_files(reference_dir, seed=seed)
            bins = min(metrics.DEFAULT_NDB_BINS, max(2, len(ref_paths) // 10))
            self.reference = scoring.prepare_reference(
                scoring.embed_files(self.classifier, ref_paths), bins, seed)
            self.heldout = scoring.embed_files(self.classifier, held_paths)
            self.nn_samples = min(self.n, len(self.heldout), scoring.DEFAULT_NN_SAMPLES)

    def generate(self, generator):
        """The ``n`` clips of ``generator`` from the fixed z, clipped to [-1, 1]."""
        z = sample_z(self.n, int(self.latent_input(generator)[-1]), self.seed)
        parts = []
        for start in range(0, self.n, SCORE_BATCH):
            rows = slice(start, start + SCORE_BATCH)
            inputs = z[rows] if self.labels is None else [z[rows], self.labels[rows]]
            parts.append(np.asarray(generator(inputs, training=False)))
        return np.clip(np.concatenate(parts), -1.0, 1.0)

    @staticmethod
    def latent_input(generator):
        shape = generator.input_shape
        return shape[0] if isinstance(shape, list) else shape

    def __call__(self, generator):
        """The scores of ``generator`` (a dict of floats)."""
        audio = self.generate(generator)
        scores = audio_stats.clip_statistics(audio, self.sample_rate)
        if self.classifier is None:
            return scores
        embeddings = self._embed(audio)
        found = scoring.sample_metrics(embeddings, self.reference, self.splits, self.nn_samples)
        scores.update(_classifier_scores(found))
        histogram = scoring.class_histogram(embeddings, self.classifier.class_names)
        scores["classes_present"] = sum(share > 0 for share in histogram.values())
        if self.labels is not None:
            scores["label_accuracy"] = scoring.label_accuracy(
                embeddings, self.labels, self.class_names, self.classifier.class_names)[0]
        return scores

    def real_scores(self):
        """The same figures for real clips: statistics of ``real_clips`` and, with a
        classifier, the scores of the held-out real clips (split like ``n`` generated ones)."""
        scores = audio_stats.clip_statistics(self.real_clips, self.sample_rate)
        if self.classifier is None:
            return scores
        splits = metrics.splits_for(len(self.heldout), self.n // self.splits, self.splits)
        found = scoring.sample_metrics(self.heldout, self.reference, splits, self.nn_samples)
        scores.update(_classifier_scores(found))
        histogram = scoring.class_histogram(self.heldout, self.classifier.class_names)
        scores["classes_present"] = sum(share > 0 for share in histogram.values())
        return scores

    def _embed(self, audio):
        audio = audio.mean(axis=2) if audio.ndim == 3 else audio
        if self.sample_rate != self.classifier.sample_rate:
            audio = soxr.resample(audio.T, self.sample_rate, self.classifier.sample_rate).T
        return self.classifier.embed(fit_batch(audio, self.classifier.slice_len))


def _classifier_scores(found):
    keys = ("inception_score", "inception_score_std", "fid", "d_self", "d_train", "ndb_over_k")
    return {key: float(found[key]) for key in keys}


@dataclasses.dataclass
class Budget:
    """Training budget: ``steps`` generator steps and/or ``minutes`` of training (0 = no
    limit of that kind; at least one must be set)."""

    steps: int = 0
    minutes: float = 0.0

    def __post_init__(self):
        if self.steps < 0 or self.minutes < 0 or not (self.steps or self.minutes):
            raise ValueError(f"the budget needs steps > 0 or minutes > 0 (both >= 0), got "
                             f"steps={self.steps!r}, minutes={self.minutes!r}")


class CurveTracker(keras.callbacks.Callback):
    """A learning curve of a training run: scores G before the first step, every
    ``eval_every`` steps and at the end, and ends the run at the budget's minutes.

    Each point (appended to :attr:`points` and passed to ``report``) holds ``step``,
    ``minutes`` of training (scoring pauses the clock), the mean ``wasserstein``, ``d_loss``
    and ``g_loss`` since the previous point (those the trainer logs), and ``scorer(generator)``.

    Args:
        budget: the :class:`Budget`; its steps are the run's ``train_steps``.
        eval_every: generator steps between scores.
        scorer: ``scorer(generator) -> dict``, e.g. a :class:`CurveScorer`.
        report: ``report(point)``, called with each point as it is measured, or None.
    """

    LOSSES = ("wasserstein", "d_loss", "g_loss")

    def __init__(self, budget, eval_every, scorer, report=None):
        super().__init__()
        if int(eval_every) != eval_every or eval_every < 1:
            raise ValueError(f"eval_every must be a positive integer, got "
                             f"eval_every={eval_every!r}")
        self.step = None
        self.generator = None
        self.budget = budget
        self.eval_every = int(eval_every)
        self.scorer = scorer
        self.report = report
        self.points = []
        self.seconds = 0.0
        self._started = None
        self._metric_steps = MetricSteps()
        self._sums = {}

    def for_run(self, run):
        """This callback, following ``run`` (a training loop's RunContext): its step variable
        and the G to listen to (the weight average, for SpecGAN with Griffin-Lim)."""
        self.step = run.step
        self.generator = run.audio_generator
        return self

    def on_train_begin(self, logs=None):
        self.measure()

    def on_epoch_begin(self, epoch, logs=None):
        self._metric_steps.reset()

    def on_train_batch_end(self, batch, logs=None):
        for name, (total, count) in self._metric_steps.changes(self.model.metrics).items():
            old_total, old_count = self._sums.get(name, (0.0, 0.0))
            self._sums[name] = (old_total + total, old_count + count)
        minutes = (self.seconds + time.perf_counter() - self._started) / 60.0
        if self.budget.minutes and minutes >= self.budget.minutes:
            self.model.stop_training = True
        if int(self.step.numpy()) % self.eval_every == 0:
            self.measure()

    def on_train_end(self, logs=None):
        if self.points[-1]["step"] != int(self.step.numpy()):
            self.measure()

    def measure(self):
        """Scores G at the current step (the clock stops meanwhile) and records the point."""
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
        point = {"step": int(self.step.numpy()), "minutes": self.seconds / 60.0}
        for name in self.LOSSES:
            if name in self._sums:
                total, count = self._sums[name]
                point[name] = total / count
        self._sums = {}
        point.update(self.scorer(self.generator))
        self.points.append(point)
        if self.report is not None:
            self.report(point)
        self._started = time.perf_counter()
