"""Scoring generated audio against real audio with a trained classifier.

:func:`score` produces the report of ``evaluate.py score``: the inception score of the generated
clips, FID in the classifier's feature space, the paper's nearest-neighbour distances |D|self and
|D|train, and NDB on log-mel images. Every number is also computed for a held-out set of real
clips, which gives each metric its "as good as real data" value; the |D| figures are reported
as ratios to it (1 = as diverse as / as far from the training clips as real held-out clips).

:func:`make_eval_fn` packs the same measurement into a callable for use during training.

A class-conditional generator is asked for its classes in turn (clip i of class i mod C), and
the report adds ``label_accuracy``: the share of clips that the classifier assigns to the class
they were generated for (the machine analog of the paper's human labelling test), with
``label_accuracy_per_class``. The generator's classes are matched to the classifier's by name.
"""

import concurrent.futures
import dataclasses
import json
import os

import numpy as np
import soxr
from absl import logging

from wavegan_tf.audio import audio_files
from wavegan_tf.eval import labelled, metrics
from wavegan_tf.eval.classifier import DEFAULT_BATCH_SIZE, Embeddings, load_classifier
from wavegan_tf.eval.features import fit_batch
from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.nets.latent import sample_z
from wavegan_tf.serving import loading
from wavegan_tf.training.config import CONFIG_FILENAME

PAPER_N = 50000
DEFAULT_NN_SAMPLES = 1000
DEFAULT_HELDOUT_FRACTION = 0.2


@dataclasses.dataclass
class ReferenceSet:
    """Embedded reference clips and the k-means bins of their log-mel images (for NDB)."""

    embeddings: Embeddings
    centroids: np.ndarray
    bins: np.ndarray

    @property
    def num_bins(self):
        return len(self.centroids)


def prepare_reference(embeddings, ndb_bins=metrics.DEFAULT_NDB_BINS, seed=0):
    """Fits the NDB bins on ``embeddings.log_mel`` and assigns the reference clips to them."""
    if int(ndb_bins) != ndb_bins or not 2 <= ndb_bins <= len(embeddings):
        raise ValueError(f"ndb_bins must be an integer in [2, {len(embeddings)}] (the number "
                         f"of reference clips), got ndb_bins={ndb_bins!r}")
    centroids = metrics.kmeans(embeddings.log_mel, int(ndb_bins), seed=seed)
    return ReferenceSet(embeddings, centroids,
                        metrics.assign_bins(embeddings.log_mel, centroids))


def sample_metrics(embeddings, reference=None, splits=metrics.DEFAULT_SPLITS,
                   nn_samples=DEFAULT_NN_SAMPLES):
    """IS (and, given a :class:`ReferenceSet`, FID, |D|self, |D|train, NDB) of embedded clips.

    The clips are first shuffled (seed 0), as folders are read class by class; the inception
    score splits them into contiguous parts and the |D| distances use the first
    ``nn_samples`` (nearest-neighbour distances shrink as a set grows, so compare them only
    between sets of equal size).
    """
    embeddings = embeddings.shuffled()
    mean, std = metrics.inception_score(embeddings.probs, splits)
    result = {"inception_score": mean, "inception_score_std": std, "n": len(embeddings),
              "splits": splits}
    if reference is None:
        return result
    subset = embeddings.features[:nn_samples]
    ndb = metrics.ndb_test(reference.bins,
                           metrics.assign_bins(embeddings.log_mel, reference.centroids),
                           reference.num_bins)
    result.update(
        fid=metrics.frechet_distance(embeddings.features, reference.embeddings.features),
        d_self=metrics.mean_nearest_neighbour_distance(subset),
        d_train=metrics.mean_nearest_neighbour_distance(subset, reference.embeddings.features),
        nn_samples=len(subset), ndb=ndb["ndb"], ndb_over_k=ndb["ndb_over_k"],
        ndb_bins=reference.num_bins)
    return result


def class_histogram(embeddings, class_names):
    """Share of clips whose most likely class is each class (a quick mode-collapse check)."""
    counts = np.bincount(np.argmax(embeddings.probs, axis=1), minlength=len(class_names))
    return {name: float(c) / len(embeddings) for name, c in zip(class_names, counts)}


def is_model_path(path):
    """True for a training directory or an exported SavedModel, False for a folder of audio."""
    return any(os.path.isfile(os.path.join(path, name))
               for name in (CONFIG_FILENAME, loading.SAVED_MODEL_FILENAME))


def embed_files(classifier, paths, batch_size=DEFAULT_BATCH_SIZE):
    """Decodes, fits and embeds audio files, skipping undecodable ones with a warning."""
    def decode(path):
        try:
            return audio_files.decode_audio_file(path, classifier.sample_rate, 1)[:, 0]
        except audio_files.AudioFileError as err:
            logging.warning("Skipping %s: %s", path, err)
            return None

    parts, used = [], 0
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        for start in range(0, len(paths), batch_size):
            clips = [c for c in pool.map(decode, paths[start:start + batch_size]) if c is not None]
            if clips:
                used += len(clips)
                parts.append(classifier.embed(np.stack(
                    [fit_batch(c[None], classifier.slice_len)[0] for c in clips]), batch_size))
    if not parts:
        raise ValueError(f"none of the {len(paths)} audio files could be decoded "
                         f"(first: {paths[0]!r})")
    return Embeddings.concatenate(parts)


def embed_generator(classifier, generate, latent_dim, n, seed=0, sample_rate=None,
                    batch_size=DEFAULT_BATCH_SIZE, labels=None):
    """Embeds ``n`` clips of ``generate(z) -> audio [b, time(, channels)]`` for seeded z.

    z is :func:`wavegan_tf.nets.latent.sample_z` of ``seed``, so the same seed scores the same
    clips. Audio at another ``sample_rate`` than the classifier's is resampled first. With
    ``labels`` (``[n]`` class indices) clips come from ``generate(z, labels)``.
    """
    z = sample_z(n, latent_dim, seed)
    parts = []
    for start in range(0, n, batch_size):
        chunk = slice(start, start + batch_size)
        audio = generate(z[chunk]) if labels is None else generate(z[chunk], labels[chunk])
        audio = np.asarray(audio, np.float32)
        audio = audio.mean(axis=2) if audio.ndim == 3 else audio
        if sample_rate and sample_rate != classifier.sample_rate:
            audio = soxr.resample(audio.T, sample_rate, classifier.sample_rate).T
        parts.append(classifier.embed(fit_batch(audio, classifier.slice_len), batch_size))
    return Embeddings.concatenate(parts)


def cycled_labels(n, num_classes):
    """Class indices ``[n]``: 0, 1, ..., C - 1, 0, 1, ... (every class equally often)."""
    return np.arange(n, dtype=np.int32) % num_classes


def classifier_indices(class_names, classifier_names):
    """The classifier's output index of each of ``class_names`` (matched by name); ValueError
    naming the classes the classifier does not know."""
    missing = [name for name in class_names if name not in classifier_names]
    if missing:
        raise ValueError(f"the classifier does not know the generator's classes {missing} "
                         f"(classifier classes: {list(classifier_names)}); label accuracy needs "
                         "a classifier trained on the same class folders")
    return np.array([list(classifier_names).index(name) for name in class_names])


def label_accuracy(embeddings, labels, class_names, classifier_names):
    """``(accuracy, {class: accuracy})``: the share of clips generated for class ``labels[i]``
    (an index into ``class_names``) that the classifier assigns to that class."""
    wanted = classifier_indices(class_names, classifier_names)[labels]
    correct = np.argmax(embeddings.probs, axis=1) == wanted
    per_class = {name: float(np.mean(correct[labels == i]))
                 for i, name in enumerate(class_names) if np.any(labels == i)}
    return float(np.mean(correct)), per_class


def choose_files(folder, n=None, seed=0, role="audio"):
    """Audio files under ``folder`` (recursive); at most ``n``, a seeded random subset."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{role} folder {folder!r} does not exist")
    paths, _ = audio_files.find_audio_files(folder)
    if not paths:
        raise ValueError(f"{role} folder {folder!r} holds no audio files (looked recursively for "
                         f"{', '.join(audio_files.audio_extensions())})")
    if n is not None and len(paths) > n:
        keep = np.random.default_rng(seed).permutation(len(paths))[:n]
        paths = [paths[i] for i in sorted(keep)]
    return paths


def reference_files(reference_dir, heldout_dir=None, seed=0,
                    heldout_fraction=DEFAULT_HELDOUT_FRACTION):
    """``(reference paths, held-out paths, description)`` for the reference folder.

    Held-out real clips come from ``heldout_dir`` if given; else from ``test/`` (or
    ``valid/``) when ``reference_dir`` has ``train/``, ``valid/``, ``test/`` folders (the
    reference is then ``train/``); else a seeded ``heldout_fraction`` of the reference files.
    """
    if heldout_dir is not None:
        return (choose_files(reference_dir, role="reference"),
                choose_files(heldout_dir, role="held-out"), heldout_dir)
    if labelled.has_split_folders(reference_dir):
        for name in ("test", "valid"):
            split = os.path.join(reference_dir, name)
            if os.path.isdir(split):
                return (choose_files(os.path.join(reference_dir, "train"), role="reference"),
                        choose_files(split, role="held-out"), split)
    paths = choose_files(reference_dir, role="reference")
    count = max(2, int(round(heldout_fraction * len(paths))))
    if len(paths) < count + 2:
        raise ValueError(f"reference folder {reference_dir!r} has {len(paths)} audio files; at "
                         f"least {count + 2} are needed to hold {count} out")
    held = set(np.random.default_rng(seed).permutation(len(paths))[:count].tolist())
    return ([p for i, p in enumerate(paths) if i not in held],
            [p for i, p in enumerate(paths) if i in held],
            f"{count} files held out of {reference_dir} (seed {seed})")


def score(classifier_path, generated, reference_dir, *, n=PAPER_N,
          splits=metrics.DEFAULT_SPLITS, seed=0, heldout_dir=None,
          ndb_bins=metrics.DEFAULT_NDB_BINS, nn_samples=DEFAULT_NN_SAMPLES,
          batch_size=DEFAULT_BATCH_SIZE):
    """The full report for ``generated`` (a train dir, an export or a folder of audio files).

    ``n`` clips are generated from seeded z (or, from a folder, a seeded subset of at most ``n``
    files is used); the inception score averages over ``splits`` parts. The reference folder's
    clips give FID, |D|train and NDB; held-out real clips (see :func:`reference_files`) get the
    same metrics, and ``d_self_ratio`` / ``d_train_ratio`` divide the generated |D| by theirs.
    """
    _check_score_args(n, splits, ndb_bins, nn_samples, batch_size)
    if not os.path.exists(generated):
        raise FileNotFoundError(f"generated audio {generated!r} does not exist (expected a "
                                "training directory, an export or a folder of audio files)")
    ref_paths, held_paths, held_desc = reference_files(reference_dir, heldout_dir, seed)
    classifier = load_classifier(classifier_path)
    generated_emb, labelling = _embed_generated(classifier, generated, n, seed, batch_size)
    if splits > len(generated_emb):
        raise ValueError(f"splits={splits} needs at least {splits} generated clips, got "
                         f"{len(generated_emb)} from {generated!r}")
    if len(generated_emb) < splits * metrics.MIN_SPLIT_SIZE:
        logging.warning("Inception score splits of %d clips: small splits score lower; compare "
                        "scores only at equal --n and --splits", len(generated_emb) // splits)
    logging.info("Embedding %d reference and %d held-out clips", len(ref_paths), len(held_paths))
    reference = prepare_reference(embed_files(classifier, ref_paths, batch_size), ndb_bins, seed)
    heldout_emb = embed_files(classifier, held_paths, batch_size)
    size = min(nn_samples, len(generated_emb), len(heldout_emb))
    gen = sample_metrics(generated_emb, reference, splits, size)
    real_splits = metrics.splits_for(len(heldout_emb), len(generated_emb) // splits, splits)
    real = sample_metrics(heldout_emb, reference, real_splits, size)
    report = dict(gen, seed=seed, classifier=classifier_path,
                  generated=generated, reference=reference_dir, heldout=held_desc,
                  num_reference=len(reference.embeddings), num_classes=len(classifier.class_names),
                  class_histogram=class_histogram(generated_emb, classifier.class_names),
                  batch_size=batch_size, real=real)
    report.update(d_self_ratio=_ratio(gen["d_self"], real["d_self"]),
                  d_train_ratio=_ratio(gen["d_train"], real["d_train"]))
    if labelling is not None:
        labels, class_names = labelling
        accuracy, per_class = label_accuracy(generated_emb, labels, class_names,
                                             classifier.class_names)
        report.update(label_accuracy=accuracy, label_accuracy_per_class=per_class,
                      real_label_accuracy=classifier.metadata.get("test_accuracy"))
    return report


def _embed_generated(classifier, generated, n, seed, batch_size):
    """``(embeddings, labelling)``: ``labelling`` is ``(labels, class_names)`` of the clips of a
    conditional generator, else None."""
    if is_model_path(generated):
        model = loading.load_model_for_generation(generated)
        logging.info("Generating and embedding %d clips from %s", n, generated)
        if not model.conditional:
            return embed_generator(classifier, model.generate, model.latent_dim, n, seed,
                                   model.sample_rate, batch_size), None
        classifier_indices(model.class_names, classifier.class_names)
        labels = cycled_labels(n, len(model.class_names))
        embeddings = embed_generator(
            classifier, lambda z, y: model.generate(z, labels=y), model.latent_dim, n, seed,
            model.sample_rate, batch_size, labels=labels)
        return embeddings, (labels, model.class_names)
    paths = choose_files(generated, n, seed, role="generated audio")
    logging.info("Embedding %d audio files from %s", len(paths), generated)
    return embed_files(classifier, paths, batch_size), None


def make_eval_fn(classifier_path, n=1000, seed=0, splits=metrics.DEFAULT_SPLITS,
                 reference_dir=None, sample_rate=None, ndb_bins=metrics.DEFAULT_NDB_BINS,
                 nn_samples=DEFAULT_NN_SAMPLES, batch_size=DEFAULT_BATCH_SIZE,
                 class_names=None):
    """A callable ``eval_fn(generator: keras.Model) -> dict`` for scoring during training.

    Each call generates ``n`` clips from the same seeded z (so scores of successive checkpoints
    are comparable) and returns ``inception_score``, ``inception_score_std`` and ``n``; with a
    ``reference_dir`` (embedded once, here) also ``fid``, ``d_self``, ``d_train``, ``ndb``,
    ``ndb_over_k``. ``sample_rate`` is the generator's rate when it differs from the
    classifier's. The classifier is loaded once, here. ``class_names`` (those of a
    conditional generator, which is then called with ``[z, label]``) cycle the labels of the
    clips and add ``label_accuracy`` to the scores.
    """
    _check_score_args(n, splits, ndb_bins, nn_samples, batch_size)
    classifier = load_classifier(classifier_path)
    labels = None
    if class_names is not None:
        classifier_indices(class_names, classifier.class_names)
        labels = cycled_labels(n, len(class_names))
    reference = None
    if reference_dir is not None:
        paths = choose_files(reference_dir, role="reference")
        reference = prepare_reference(embed_files(classifier, paths, batch_size), ndb_bins, seed)

    def eval_fn(generator):
        if labels is None:
            embeddings = embed_generator(
                classifier, lambda z: generator(z, training=False),
                int(generator.input_shape[-1]), n, seed, sample_rate, batch_size)
            return sample_metrics(embeddings, reference, splits, nn_samples)
        embeddings = embed_generator(
            classifier, lambda z, y: generator([z, y], training=False),
            int(generator.input_shape[0][-1]), n, seed, sample_rate, batch_size, labels=labels)
        scores = sample_metrics(embeddings, reference, splits, nn_samples)
        scores["label_accuracy"] = label_accuracy(embeddings, labels, class_names,
                                                  classifier.class_names)[0]
        return scores

    return eval_fn


def write_report(report, path):
    """Writes the report as JSON, atomically (temporary file, then rename); what killed
    writers of ``path`` left beside it is deleted first."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with atomic_output_file(path, suffix=".json", tidy=True) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
    return path


def format_table(report):
    """The report as a readable two-column table (generated vs held-out real clips)."""
    real = report["real"]
    rows = [
        ("clips", f"{report['n']}", f"{real['n']}"),
        ("inception score splits", f"{report['splits']}", f"{real['splits']}"),
        ("inception score",
         f"{report['inception_score']:.3f} +- {report['inception_score_std']:.3f}",
         f"{real['inception_score']:.3f} +- {real['inception_score_std']:.3f}"),
        ("FID (classifier features)", f"{report['fid']:.3f}", f"{real['fid']:.3f}"),
        (f"|D|self ({report['nn_samples']} clips)",
         f"{report['d_self']:.4f} ({_times(report['d_self_ratio'])})", f"{real['d_self']:.4f}"),
        ("|D|train", f"{report['d_train']:.4f} ({_times(report['d_train_ratio'])})",
         f"{real['d_train']:.4f}"),
        (f"NDB (K={report['ndb_bins']})", f"{report['ndb']} ({report['ndb_over_k']:.2f})",
         f"{real['ndb']} ({real['ndb_over_k']:.2f})"),
    ]
    if "label_accuracy" in report:
        real_accuracy = report.get("real_label_accuracy")
        rows.append(("label accuracy", f"{report['label_accuracy']:.3f}",
                     "n/a" if real_accuracy is None else f"{real_accuracy:.3f} (classifier test)"))
    header = ("metric", "generated", "held-out real")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
             for row in [header] + rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"reference: {report['reference']} ({report['num_reference']} clips); "
                 f"held out: {report['heldout']}")
    return "\n".join(lines)


def _ratio(value, base):
    """``value / base``, or None when the real clips' distance is 0 (all duplicates)."""
    return float(value / base) if base > 0 else None


def _times(ratio):
    return "n/a" if ratio is None else f"{ratio:.2f}x real"


def _check_score_args(n, splits, ndb_bins, nn_samples, batch_size):
    for name, value in (("n", n), ("splits", splits), ("nn_samples", nn_samples),
                        ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    if splits > n:
        raise ValueError(f"splits must not exceed n (each split needs clips), got splits={splits} "
                         f"and n={n}")
    if int(ndb_bins) != ndb_bins or ndb_bins < 2:
        raise ValueError(f"ndb_bins must be an integer >= 2, got ndb_bins={ndb_bins!r}")
