"""The paper's audio classifier: build, train, save and load it.

Audio ``[None, slice_len]`` (or ``[None, slice_len, 1]``) -> log-mel spectrogram (STFT 1024/128,
128 mel bins over 40-7800 Hz, log) -> four blocks of conv 5x5 (128 filters), batch norm, ReLU
and 2x2 max pooling -> a 128-unit ``features`` layer -> one logit per class. The features layer
is the embedding used for FID and the nearest-neighbour distances; it keeps them
low-dimensional (the flattened conv output has thousands of dimensions).

A classifier is saved as a ``.keras`` file plus a JSON sidecar (``PATH.json``) that names the
classes and records how it was trained and how well it did on held-out clips.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from wavegan_tf.eval import labelled, metrics
from wavegan_tf.eval.features import LogMelSpectrogram, default_upper_edge, num_frames
from wavegan_tf.files.atomic_files import atomic_output_file
from wavegan_tf.version import __version__

DEFAULT_SLICE_LEN = 16384
DEFAULT_SAMPLE_RATE = 16000
DEFAULT_FILTERS = 128
DEFAULT_EMBEDDING_DIM = 128
DEFAULT_EPOCHS = 30
DEFAULT_BATCH_SIZE = 64
DEFAULT_PATIENCE = 5
DEFAULT_LEARNING_RATE = 1e-3
NUM_BLOCKS = 4
# Faster-moving batch-norm statistics than Keras' 0.99, so that small labelled sets (a few
# dozen steps) still end with usable inference statistics.
BN_MOMENTUM = 0.9
KERAS_SUFFIX = ".keras"
SIDECAR_SUFFIX = ".json"
FEATURES_LAYER = "features"
LOG_MEL_LAYER = "log_mel"
# Log-mel images are average-pooled by this factor in time and frequency before k-means (NDB).
NDB_POOL = 4


def build_classifier(num_classes, slice_len=DEFAULT_SLICE_LEN, sample_rate=DEFAULT_SAMPLE_RATE,
                     filters=DEFAULT_FILTERS, embedding_dim=DEFAULT_EMBEDDING_DIM, dropout=0.5):
    """The classifier as a functional Keras model: audio ``[None, slice_len]`` -> logits."""
    for name, value in (("num_classes", num_classes), ("filters", filters),
                        ("embedding_dim", embedding_dim)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    frame_length = LogMelSpectrogram().frame_length
    if int(slice_len) != slice_len or slice_len < frame_length:
        raise ValueError(f"slice_len must be an integer >= the STFT window {frame_length}, "
                         f"got slice_len={slice_len!r}")
    audio = keras.Input((slice_len,), name="audio")
    front_end = LogMelSpectrogram(sample_rate=sample_rate,
                                  upper_edge_hertz=default_upper_edge(sample_rate),
                                  name=LOG_MEL_LAYER)
    # [slice_len] -> [frames, 128] -> [frames, 128, 1]
    x = front_end(audio)
    x = layers.Reshape((num_frames(slice_len), front_end.num_mel_bins, 1), name="image")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="input_bn")(x)
    # four times: [t, f, c] -> [t/2, f/2, filters]
    for i in range(NUM_BLOCKS):
        x = layers.Conv2D(filters, 5, padding="same", use_bias=False, name=f"conv_{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"conv_{i}_bn")(x)
        x = layers.ReLU(name=f"conv_{i}_relu")(x)
        x = layers.MaxPooling2D(2, padding="same", name=f"conv_{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    features = layers.Dense(embedding_dim, activation="relu", name=FEATURES_LAYER)(x)
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(features)
    return keras.Model(audio, logits, name="audio_classifier")


@dataclasses.dataclass
class Embeddings:
    """What the classifier makes of a set of clips: ``probs`` ``[n, classes]``, ``features``
    ``[n, embedding_dim]`` and pooled log-mel images ``log_mel`` ``[n, d]`` (for NDB)."""

    probs: np.ndarray
    features: np.ndarray
    log_mel: np.ndarray

    def __len__(self):
        return len(self.probs)

    def shuffled(self, seed=0):
        """The same clips in a seeded random order (folders are read class by class)."""
        order = np.random.default_rng(seed).permutation(len(self))
        return Embeddings(self.probs[order], self.features[order], self.log_mel[order])

    @classmethod
    def concatenate(cls, parts):
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts])
                     for f in dataclasses.fields(cls)))


class AudioClassifier:
    """A loaded classifier with its class names and audio format.

    Attributes:
        model: the Keras model (audio -> logits).
        class_names: one name per output, in order.
        sample_rate, slice_len: the audio the model expects.
        metadata: the sidecar's contents (training settings and held-out results).
    """

    def __init__(self, model, class_names, metadata=None):
        self.model = model
        self.class_names = list(class_names)
        front_end = model.get_layer(LOG_MEL_LAYER)
        self.sample_rate = front_end.sample_rate
        self.slice_len = int(model.input_shape[1])
        self.metadata = dict(metadata or {})
        outputs = [model.output, model.get_layer(FEATURES_LAYER).output, front_end.output]
        self._outputs = keras.Model(model.input, outputs)
        self._embed_batch = tf.function(
            self._embed_tensors,
            input_signature=[tf.TensorSpec([None, self.slice_len], tf.float32)])

    def _embed_tensors(self, audio):
        logits, features, log_mel = self._outputs(audio, training=False)
        pooled = tf.nn.avg_pool2d(log_mel[..., None], NDB_POOL, NDB_POOL, "VALID")
        return tf.nn.softmax(logits), features, tf.reshape(pooled, [tf.shape(audio)[0], -1])

    def embed(self, audio, batch_size=DEFAULT_BATCH_SIZE):
        """:class:`Embeddings` of ``audio`` ``[n, slice_len]`` (fitted clips, see features)."""
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 2 or audio.shape[1] != self.slice_len:
            raise ValueError(f"audio must have shape [n, slice_len={self.slice_len}], "
                             f"got {audio.shape}")
        parts = [Embeddings(*(t.numpy() for t in self._embed_batch(audio[i:i + batch_size])))
                 for i in range(0, len(audio), batch_size)]
        return Embeddings.concatenate(parts)

    def predict_proba(self, audio, batch_size=DEFAULT_BATCH_SIZE):
        """Class probabilities ``[n, classes]`` of ``audio`` ``[n, slice_len]``."""
        return self.embed(audio, batch_size).probs


def sidecar_path(path):
    """The JSON sidecar beside a classifier file: ``PATH.json``."""
    return path + SIDECAR_SUFFIX


def save_classifier(model, path, class_names, metadata=None):
    """Writes ``model`` to ``path`` (a ``.keras`` file) and its class names to ``PATH.json``.

    Both files are written under temporary names and renamed into place.
    """
    if not path.endswith(KERAS_SUFFIX):
        raise ValueError(f"the classifier path must end in {KERAS_SUFFIX}, got {path!r}")
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{len(class_names)} class names for a model with "
                         f"{model.output_shape[-1]} outputs")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    info = dict(metadata or {}, class_names=list(class_names),
                wavegan_tf_version=__version__)
    with atomic_output_file(path, suffix=KERAS_SUFFIX) as tmp:
        keras.saving.save_model(model, tmp)
    with atomic_output_file(sidecar_path(path), suffix=SIDECAR_SUFFIX) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
    return path


def load_classifier(path):
    """Loads a classifier written by :func:`save_classifier` (safe mode on)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"classifier file {path!r} does not exist (train one with "
                                "evaluate.py train_classifier)")
    meta_path = sidecar_path(path)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"classifier {path!r} has no class-name file {meta_path!r} "
                                "beside it")
    try:
        with open(meta_path, encoding="utf-8") as f:
            metadata = json.load(f)
        class_names = metadata["class_names"]
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"cannot read class names from {meta_path!r}: {err!r}") from err
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load classifier {path!r}: {err}") from err
    if len(class_names) != model.output_shape[-1]:
        raise ValueError(f"{meta_path!r} names {len(class_names)} classes but {path!r} has "
                         f"{model.output_shape[-1]} outputs")
    return AudioClassifier(model, class_names, metadata)


def train_classifier(data_dir, out_path, *, slice_len=DEFAULT_SLICE_LEN,
                     sample_rate=DEFAULT_SAMPLE_RATE, epochs=DEFAULT_EPOCHS,
                     batch_size=DEFAULT_BATCH_SIZE, patience=DEFAULT_PATIENCE,
                     learning_rate=DEFAULT_LEARNING_RATE, filters=DEFAULT_FILTERS,
                     holdout_fraction=labelled.DEFAULT_HOLDOUT_FRACTION, seed=0, verbose=1):
    """Trains a classifier on a labelled folder, saves it to ``out_path`` and returns results.

    Training stops early when validation accuracy has not improved for ``patience`` epochs,
    keeping the best weights. The returned dict (also stored in the sidecar) holds the class
    names, split sizes, ``valid_accuracy``, ``test_accuracy`` (held-out clips) and the
    inception score of the test and train clips (the paper's "real data" scores).
    Seeds Python, numpy and TensorFlow with ``seed``.
    """
    _check_training_args(out_path, epochs, batch_size, patience, learning_rate)
    data = labelled.load_labelled_audio(data_dir, slice_len, sample_rate, holdout_fraction, seed)
    keras.utils.set_random_seed(seed)
    model = build_classifier(len(data.class_names), slice_len, sample_rate, filters)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    stop = AccuracyEarlyStopping(len(data.valid), patience)
    history = model.fit(data.train.audio, data.train.labels, batch_size=batch_size,
                        epochs=epochs, validation_data=(data.valid.audio, data.valid.labels),
                        callbacks=[stop], shuffle=True, verbose=verbose)
    results = _results(model, data, history, batch_size)
    results["best_epoch"] = stop.best_epoch + 1
    results.update(data_dir=os.path.abspath(data_dir), layout=data.layout, slice_len=slice_len,
                   sample_rate=sample_rate, batch_size=batch_size, learning_rate=learning_rate,
                   filters=filters, patience=patience, max_epochs=epochs, seed=seed)
    save_classifier(model, out_path, data.class_names, results)
    return dict(results, class_names=data.class_names, path=out_path)


class AccuracyEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping on validation accuracy that keeps the best weights; between epochs of
    equal accuracy the one with the lower validation loss counts as better.

    The tie-break matters on easy data, where accuracy soon stays at 1.0 while the model is still
    growing confident; the inception score needs confident probabilities. The loss term is below
    one validation clip's worth of accuracy, so it never outweighs a real accuracy gain.
    """

    def __init__(self, num_valid, patience):
        super().__init__(monitor="val_accuracy", mode="max", patience=patience,
                         restore_best_weights=True)
        self._tie_weight = 1.0 / (num_valid + 1)

    def get_monitor_value(self, logs):
        accuracy = super().get_monitor_value(logs)
        loss = (logs or {}).get("val_loss")
        if accuracy is None or loss is None:
            return accuracy
        return accuracy + self._tie_weight / (1.0 + loss)


def _results(model, data, history, batch_size):
    classifier = AudioClassifier(model, data.class_names)
    scores = {}
    for name in ("valid", "test", "train"):
        split = getattr(data, name)
        probs = classifier.predict_proba(split.audio, batch_size)
        scores[f"{name}_accuracy"] = float(np.mean(np.argmax(probs, axis=1) == split.labels))
        mean, std = metrics.inception_score(metrics.shuffled(probs),
                                            metrics.splits_for(len(probs)))
        scores[f"{name}_inception_score"] = mean
        scores[f"{name}_inception_score_std"] = std
        scores[f"num_{name}"] = len(split)
    scores["epochs_run"] = len(history.history.get("val_accuracy", []))
    return scores


def _check_training_args(out_path, epochs, batch_size, patience, learning_rate):
    if not out_path.endswith(KERAS_SUFFIX):
        raise ValueError(f"the classifier path must end in {KERAS_SUFFIX}, got {out_path!r}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {name}={value!r}")
    if int(patience) != patience or patience < 0:
        raise ValueError(f"patience must be >= 0, got patience={patience!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0, got learning_rate={learning_rate!r}")
