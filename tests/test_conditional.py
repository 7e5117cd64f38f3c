"""Class-conditional WaveGAN: labels from class subfolders, conditional G and D, training."""

import logging

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from wavegan_tf import GANTrainer, GANConfig, build_discriminator, build_generator
from wavegan_tf.audio import data
from wavegan_tf.training import distribute
from wavegan_tf.training.feeding import critic_batches
from wavegan_tf.nets.models import LABEL_EMBEDDING_DIM

LATENT = 8
SLICE = 16384
RATE = 8000


def write_tone(path, freq, seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.5 * np.sin(2 * np.pi * freq * t), rate)


def class_folder(root, counts):
    """``root/<class>/clip_<i>.wav`` with ``counts[class]`` one-second tones per class."""
    for index, (name, count) in enumerate(counts.items()):
        for i in range(count):
            write_tone(root / name / f"clip_{i}.wav", 200.0 * (index + 1) + i)
    return str(root)


# -- data ------------------------------------------------------------------------------------

def test_classes_are_the_sorted_first_level_subfolders(tmp_path):
    root = class_folder(tmp_path, {"zebra": 1, "apple": 1, "mango": 1})
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "notes.txt").write_text("not audio")
    assert data.list_classes(root) == ["apple", "mango", "zebra"]


def test_labelled_batches_carry_the_class_of_each_window(tmp_path):
    root = class_folder(tmp_path, {"high": 3, "low": 3})
    # A file deeper inside a class folder still belongs to that class.
    write_tone(tmp_path / "low" / "more" / "deep.wav", 150.0)
    dataset = data.audio_dataset(root, slice_len=SLICE, sample_rate=RATE, batch_size=4,
                                 labels=True, seed=0, repeat=False, pad_end=True)
    seen = {}
    for audio, labels in dataset:
        assert audio.shape == (4, SLICE, 1) and labels.dtype == tf.int32
        for clip, label in zip(audio.numpy()[:, :RATE, 0], labels.numpy()):
            spectrum = np.abs(np.fft.rfft(clip))
            seen.setdefault(int(label), []).append(np.argmax(spectrum) * RATE / len(clip))
    # "high" (index 0) holds tones of 200-202 Hz, "low" (index 1) of 400-402 Hz and 150 Hz.
    assert set(seen) == {0, 1}
    assert all(195 < f < 205 for f in seen[0])
    assert all(145 < f < 155 or 395 < f < 405 for f in seen[1])


def test_class_names_choose_and_order_the_classes(tmp_path):
    root = class_folder(tmp_path, {"a": 2, "b": 2, "c": 2})
    store = data.load_audio_store(root, RATE, class_names=["c", "a"])
    assert store.class_names == ["c", "a"]
    assert sorted(set(store.labels.tolist())) == [0, 1]
    assert all(("/c/" in p) == (label == 0) for p, label in zip(store.paths, store.labels))
    assert not any("/b/" in p for p in store.paths)


def test_class_balance_counts_files_and_seconds_and_warns_when_unbalanced(tmp_path, caplog):
    root = class_folder(tmp_path, {"few": 1, "many": 3})
    with caplog.at_level(logging.INFO), caplog.at_level(logging.INFO, logger="absl"):
        store = data.load_audio_store(root, RATE, class_names=data.list_classes(root))
    balance = data.class_balance(store, RATE)
    assert list(balance) == ["few", "many"]
    assert balance["few"]["files"] == 1 and balance["many"]["files"] == 3
    assert balance["many"]["seconds"] == pytest.approx(3.0)
    assert balance["few"]["share"] == pytest.approx(0.25)
    assert "few 1 files (1.0 s, 25%)" in caplog.text
    assert "unbalanced" in caplog.text


def test_audio_at_the_top_level_and_in_subfolders_is_an_error(tmp_path):
    root = class_folder(tmp_path, {"a": 1, "b": 1})
    write_tone(tmp_path / "loose.wav", 300.0)
    with pytest.raises(ValueError, match=r"top level \(loose.wav\) and in the class subfolders"):
        data.audio_dataset(root, sample_rate=RATE, batch_size=2, labels=True)
    # Without labels the same folder is fine: files are found recursively.
    data.audio_dataset(root, sample_rate=RATE, batch_size=2)


@pytest.mark.parametrize("counts", [{}, {"only": 2}])
def test_fewer_than_two_classes_is_an_error(tmp_path, counts):
    root = class_folder(tmp_path, counts)
    with pytest.raises(ValueError, match=f"has {len(counts)} class subfolders"):
        data.list_classes(root)


def test_unknown_class_names_are_named_with_the_known_ones(tmp_path):
    root = class_folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(FileNotFoundError, match=r"no class subfolder \['z'\].*\['a', 'b'\]"):
        data.audio_dataset(root, sample_rate=RATE, batch_size=2, labels=True,
                           class_names=["a", "z"])
    with pytest.raises(ValueError, match="only used with labels=True"):
        data.audio_dataset(root, sample_rate=RATE, batch_size=2, class_names=["a", "b"])


def test_a_class_without_usable_audio_is_named(tmp_path):
    root = class_folder(tmp_path, {"a": 1})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable audio in .*empty"):
        data.audio_dataset(root, sample_rate=RATE, batch_size=1, labels=True)


def test_critic_batches_stack_audio_and_labels():
    audio = tf.zeros((12, 4, 1))
    labels = tf.range(12, dtype=tf.int32)
    batches = tf.data.Dataset.from_tensor_slices((audio, labels)).batch(2)
    stacks = list(critic_batches(batches, 3))
    assert len(stacks) == 2
    stack_audio, stack_labels = stacks[0]
    assert stack_audio.shape == (3, 2, 4, 1)
    np.testing.assert_array_equal(stack_labels, [[0, 1], [2, 3], [4, 5]])


def test_replicas_get_the_labels_of_their_own_rows():
    audio = tf.reshape(tf.range(2 * 4, dtype=tf.float32), (2, 4, 1, 1))  # [n_critic, 4, 1, 1]
    labels = tf.reshape(tf.range(2 * 4, dtype=tf.int32), (2, 4))
    stacks = tf.data.Dataset.from_tensors((audio, labels))
    parts = list(distribute.split_between_replicas(stacks, 2))
    assert len(parts) == 2
    for part_audio, part_labels in parts:
        assert part_audio.shape == (2, 2, 1, 1) and part_labels.shape == (2, 2)
        np.testing.assert_array_equal(part_audio.numpy()[..., 0, 0], part_labels.numpy())
    np.testing.assert_array_equal(parts[1][1], [[2, 3], [6, 7]])


# -- models ----------------------------------------------------------------------------------

def test_conditional_models_map_z_and_label_to_audio_and_logits():
    g = build_generator(latent_dim=LATENT, model_dim=2, num_classes=3)
    d = build_discriminator(model_dim=2, num_classes=3)
    z = np.random.default_rng(0).uniform(-1, 1, (4, LATENT)).astype("float32")
    labels = np.array([0, 1, 2, 1], "int32")
    audio = g([z, labels]).numpy()
    assert audio.shape == (4, SLICE, 1)
    assert tuple(d([audio, labels], training=True).shape) == (4, 1)
    assert [t.name for t in g.inputs] == ["z", "label"]
    assert [t.name for t in d.inputs] == ["audio", "label"]
    # The label changes the audio for the same z.
    other = g([z, np.array([1, 2, 0, 0], "int32")])
    assert not np.allclose(audio, other.numpy())


def test_conditioning_adds_exactly_the_embedding_parameters_at_paper_size():
    g = build_generator(num_classes=10)
    d = build_discriminator(num_classes=10)
    # G: a 10 x 50 embedding and 50 more inputs to the 16384-unit dense layer.
    assert g.count_params() == 19_065_345 + 10 * LABEL_EMBEDDING_DIM + LABEL_EMBEDDING_DIM * 16384
    # D: one 16384-value projection vector per class.
    assert d.count_params() == 17_427_969 + 10 * 16384
    assert build_generator().count_params() == 19_065_345
    assert build_discriminator().count_params() == 17_427_969


def test_projection_discriminator_adds_the_label_inner_product_to_the_logit():
    d = build_discriminator(model_dim=2, phase_shuffle_rad=0, num_classes=2)
    audio = np.random.default_rng(1).uniform(-1, 1, (3, SLICE, 1)).astype("float32")
    labels = np.array([0, 1, 1], "int32")
    features = keras.Model(d.inputs[0], d.get_layer("flatten").output)(audio).numpy()
    w, b = d.get_layer("logit").get_weights()
    table = d.get_layer("label_projection").get_weights()[0]
    expected = features @ w + b + np.sum(table[labels] * features, axis=1, keepdims=True)
    np.testing.assert_allclose(d([audio, labels]).numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("num_classes", [1, -1, 2.5])
def test_bad_num_classes_is_rejected(num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        build_generator(model_dim=2, num_classes=num_classes)
    with pytest.raises(ValueError, match="num_classes"):
        build_discriminator(model_dim=2, num_classes=num_classes)


# -- training --------------------------------------------------------------------------------

def _labelled_stacks(n_critic, num_classes=3, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    count = 4 * batch * n_critic
    audio = rng.uniform(-0.5, 0.5, (count, SLICE, 1)).astype("float32")
    labels = rng.integers(0, num_classes, count).astype("int32")
    batches = tf.data.Dataset.from_tensor_slices((audio, labels)).batch(batch, drop_remainder=True)
    return critic_batches(batches.repeat(), n_critic)


def _conditional_gan(loss="wgan-gp", n_critic=2, num_classes=3, seed=1, micro_batches=1,
                     optimizers=None):
    keras.utils.set_random_seed(seed)
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2, num_classes=num_classes),
                  build_discriminator(model_dim=2, num_classes=num_classes), loss=loss,
                  n_critic=n_critic, latent_dim=LATENT, seed=seed, num_classes=num_classes,
                  micro_batches=micro_batches)
    gan.compile(**(optimizers or {}))
    return gan


@pytest.mark.parametrize("loss", ["wgan-gp", "wgan", "dcgan", "lsgan"])
def test_conditional_fit_runs_each_loss_and_trains_the_label_embeddings(loss):
    gan = _conditional_gan(loss)
    g_table = gan.generator.get_layer("label_embedding").get_weights()[0].copy()
    d_table = gan.discriminator.get_layer("label_projection").get_weights()[0].copy()
    g_before = [w.copy() for w in gan.generator.get_weights()]
    history = gan.fit(_labelled_stacks(2), steps_per_epoch=2, epochs=1, verbose=0,
                      shuffle=False)
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert any(not np.array_equal(a, b) for a, b in zip(g_before, gan.generator.get_weights()))
    if loss != "wgan":
        # wgan's clipped critic (|w| <= 0.01) passes G gradients far too small to move the
        # U(-1, 1) label embedding visibly in two steps.
        assert not np.array_equal(g_table,
                                  gan.generator.get_layer("label_embedding").get_weights()[0])
    assert not np.array_equal(
        d_table, gan.discriminator.get_layer("label_projection").get_weights()[0])
    assert int(gan.d_optimizer.iterations) == 4


def test_conditional_micro_batches_split_the_labels_with_the_audio():
    def train(micro_batches):
        sgd = {"g_optimizer": keras.optimizers.SGD(0.05),
               "d_optimizer": keras.optimizers.SGD(0.05)}
        gan = _conditional_gan(seed=4, micro_batches=micro_batches, optimizers=sgd)
        gan.fit(_labelled_stacks(2, batch=4), steps_per_epoch=2, epochs=1, verbose=0,
                shuffle=False)
        return gan.generator.get_weights() + gan.discriminator.get_weights()

    whole, split = train(1), train(2)
    for a, b in zip(whole, split):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_conditional_fit_takes_flat_batches_split_in_order():
    gan = _conditional_gan(n_critic=2)
    stacks = _labelled_stacks(2).map(
        lambda audio, labels: (tf.reshape(audio, (-1, SLICE, 1)), tf.reshape(labels, (-1,))))
    history = gan.fit(stacks, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["gp"][-1])
    labels = tf.constant([[0, 1], [2, 0]], tf.int32)
    split = gan._critic_stacks((tf.zeros((2, 2, 4, 1)), labels))[1]
    np.testing.assert_array_equal(split[1], [2, 0])
    flat = gan._critic_stacks((tf.zeros((4, 4, 1)), tf.reshape(labels, (-1,))))[1]
    np.testing.assert_array_equal(flat[1], [2, 0])


def _projection_critic(weights, table):
    """D(x, y) = w.x + e_y.x: its input gradient for an example of label y is w + e_y."""
    audio = keras.Input(weights.shape)
    label = keras.Input((), dtype="int32")
    flat = keras.layers.Flatten()(audio)
    dense = keras.layers.Dense(1, use_bias=False)
    embedding = keras.layers.Embedding(*table.shape)
    logit = keras.layers.Add()([dense(flat), keras.layers.Dot(axes=1)([embedding(label), flat])])
    model = keras.Model([audio, label], logit)
    dense.set_weights([weights.reshape(-1, 1)])
    embedding.set_weights([table])
    return model


def test_gradient_penalty_is_taken_on_the_audio_with_each_label_held_fixed():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(32, 1)).astype("float32") * 0.1
    table = rng.normal(size=(3, 32)).astype("float32") * 0.3
    critic = _projection_critic(w, table)
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2, num_classes=3), critic,
                  latent_dim=LATENT, seed=0, num_classes=3)
    labels = np.array([0, 2, 1, 2, 0], "int32")
    real = tf.constant(rng.normal(size=(5, 32, 1)).astype("float32"))
    fake = tf.constant(rng.normal(size=(5, 32, 1)).astype("float32"))
    slopes = np.linalg.norm(w[:, 0] + table[labels], axis=1)
    expected = np.mean((slopes - 1.0) ** 2)
    np.testing.assert_allclose(gan._gradient_penalty(real, fake, tf.constant(labels)).numpy(),
                               expected, rtol=1e-5)


def test_labels_that_do_not_match_the_audio_are_an_error():
    gan = _conditional_gan()
    with pytest.raises(ValueError, match=r"labels must match the audio's leading axes "
                                         r"\(\(2, 2\)\), got shape \(3,\)"):
        gan._critic_stacks((tf.zeros((2, 2, 4, 1)), tf.zeros((3,), tf.int32)))


def test_conditional_gan_without_labels_in_the_data_is_an_error():
    gan = _conditional_gan()
    with pytest.raises(ValueError, match=r"needs \(audio, label\) dataset elements"):
        gan._critic_stacks(tf.zeros((2, 2, 4, 1)))


def test_models_and_num_classes_must_agree():
    with pytest.raises(ValueError, match="generator does not take a label input"):
        GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                build_discriminator(model_dim=2, num_classes=2), latent_dim=LATENT,
                num_classes=2)
    with pytest.raises(ValueError, match="discriminator takes a label input but num_classes=0"):
        GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                build_discriminator(model_dim=2, num_classes=2), latent_dim=LATENT)


def test_conditional_trainer_round_trips_through_its_config():
    gan = _conditional_gan()
    again = GANTrainer.from_config(gan.get_config())
    assert again.num_classes == 3 and again.conditional


def test_config_builds_conditional_models_from_its_class_names():
    config = GANConfig(model_dim=2, latent_dim=LATENT, conditional=True,
                           class_names=["low", "high"])
    assert config.num_classes == 2
    assert GANConfig.from_dict(config.to_dict()) == config
    gan = config.build_gan()
    assert gan.num_classes == 2 and len(gan.generator.inputs) == 2
    assert GANConfig().num_classes == 0


@pytest.mark.parametrize(
    "values, message",
    [({"class_names": ["a", "b"]}, "needs conditional=True"),
     ({"conditional": True, "class_names": ["a"]}, "at least 2 distinct"),
     ({"conditional": True, "class_names": ["a", "a"]}, "at least 2 distinct")],
)
def test_bad_class_settings_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        GANConfig(**values)


def test_conditional_config_without_class_names_cannot_build_models():
    with pytest.raises(ValueError, match="needs class_names"):
        GANConfig(model_dim=2, conditional=True).build_generator()
