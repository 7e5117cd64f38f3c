"""The fast recipe's parts: hinge loss, (lazy) R1, Adam betas, spectral heads, the minibatch
feature, and --recipe itself, from the loss values to a train.py run."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import GANConfig, GANTrainer, build_discriminator, build_generator
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.eval.learning_curve import variant_configs
from wavegan_tf.nets.minibatch_std import MinibatchStdDev
from wavegan_tf.nets.spectral_heads import LogMagnitudeSTFT, check_frame_lengths, log_floor
from wavegan_tf.training import losses, recipes
from wavegan_tf.training.checkpoints import checkpoint_number, latest_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENT = 8


def _linear_critic(weights):
    """D(x) = sum(w * x): its input gradient is w for every example."""
    inputs = keras.Input(weights.shape)
    dense = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    dense.set_weights([weights.reshape(-1, 1)])
    return model


def test_hinge_terms_and_generator_loss():
    real = tf.constant([[2.0], [0.5], [-1.0]])
    fake = tf.constant([[-2.0], [0.0], [1.0]])
    # relu(1 - D(x)): 0, 0.5, 2; relu(1 + D(G(z))): 0, 1, 2
    assert float(losses.critic_real_term("hinge", real)) == pytest.approx(2.5 / 3)
    assert float(losses.critic_fake_term("hinge", fake)) == pytest.approx(1.0)
    assert float(losses.generator_loss("hinge", fake)) == pytest.approx(1.0 / 3)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(32, 1)).astype("float32")
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2), _linear_critic(w),
                     loss="hinge", latent_dim=LATENT, seed=0, r1_gamma=1.0)
    real = tf.constant(rng.normal(size=(4, 32, 1)).astype("float32"))
    assert float(gan._r1_penalty(real)) == pytest.approx(float(np.sum(w ** 2)), rel=1e-5)


def _r1_gan(r1_every):
    keras.utils.set_random_seed(3)
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                     build_discriminator(model_dim=2, phase_shuffle_rad=0), loss="hinge",
                     n_critic=1, latent_dim=LATENT, seed=0, r1_gamma=2.0, r1_every=r1_every)
    gan.compile()
    return gan


def test_lazy_r1_runs_on_every_kth_update_weighted_by_k():
    real = tf.random.stateless_uniform((2, 16384, 1), (1, 2), -0.5, 0.5)
    every_update, lazy = _r1_gan(1), _r1_gan(3)
    lazy.discriminator.set_weights(every_update.discriminator.get_weights())
    variables = lazy.discriminator.trainable_variables
    value_1, grads_1, _ = every_update._r1_pass(
        real, None, every_update.discriminator.trainable_variables, (), [])
    value_3, grads_3, _ = lazy._r1_pass(real, None, variables, (), [])
    assert float(value_3) == pytest.approx(float(value_1), rel=1e-5) and float(value_1) > 0
    for g1, g3 in zip(grads_1, grads_3):
        np.testing.assert_allclose(g3.numpy(), 3 * g1.numpy(), rtol=1e-4, atol=1e-7)
    lazy.d_optimizer.iterations.assign(1)
    skipped_value, skipped, _ = lazy._r1_pass(real, None, variables, (), [])
    assert float(skipped_value) == 0.0
    assert all(not np.any(g.numpy()) for g in skipped)


@pytest.mark.parametrize("extra", [
    dict(loss="hinge", n_critic=1, r1_gamma=1.0, r1_every=2, spectral_heads=[64, 256],
         minibatch_std=True, adam_beta1=0.0, ema_decay=0.9),
    dict(loss="wgan-gp", n_critic=2, spectral_heads=[128], spectrogram_head=True),
    dict(loss="hinge", n_critic=1, feature_matching=1.0, micro_batches=2),
])
def test_train_steps_with_the_recipe_parts_are_finite_and_move_both_nets(extra):
    extra = dict(extra)
    micro_batches = extra.pop("micro_batches", 1)
    config = GANConfig(model_dim=2, batch_size=2, latent_dim=LATENT, kernel_len=5, **extra)
    gan = config.build_gan(micro_batches=micro_batches)
    # Kernels only: a Wasserstein critic's logit biases get no gradient (they cancel out).
    kernels = {model: [w for w in model.trainable_weights if "kernel" in w.path]
               for model in (gan.generator, gan.discriminator)}
    before = {model: [w.numpy() for w in weights] for model, weights in kernels.items()}
    real = tf.random.stateless_uniform((config.n_critic, 2, 16384, 1), (0, 1), -0.5, 0.5)
    step = tf.function(gan.train_step)
    for _ in range(3):
        out = step(real)
    assert all(np.isfinite(float(v)) for v in out.values())
    if extra.get("r1_gamma"):
        assert "r1" in out
    for model, weights in kernels.items():
        assert all(not np.allclose(b, w.numpy()) for b, w in zip(before[model], weights))
    assert int(gan.d_optimizer.iterations) == 3 * config.n_critic


def test_adam_betas_reach_both_optimizers_and_rmsprop_losses_refuse_them():
    gan = GANConfig(model_dim=2, loss="hinge", n_critic=1, adam_beta1=0.0, adam_beta2=0.95,
                    latent_dim=LATENT).build_gan()
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert (optimizer.beta_1, optimizer.beta_2) == (0.0, 0.95)
    assert GANConfig(loss="hinge").build_gan().g_optimizer.beta_1 == 0.0
    with pytest.raises(ValueError, match="adam_beta1 needs a loss trained with Adam"):
        GANConfig(loss="lsgan", adam_beta1=0.0)
    with pytest.raises(ValueError, match=r"adam_beta2 must be in \[0, 1\)"):
        GANConfig(adam_beta2=1.0)


@pytest.mark.parametrize("values, message", [
    (dict(r1_gamma=1.0), "'wgan-gp' has the gradient penalty"),
    (dict(loss="hinge", r1_gamma=-1.0), "r1_gamma must be >= 0"),
    (dict(loss="hinge", r1_every=0), "r1_every must be an integer >= 1"),
    (dict(feature_matching=-0.5), "feature_matching must be >= 0"),
    (dict(spectral_heads=[100]), "powers of two from 16 to slice_len / 4 = 4096"),
    (dict(spectral_heads=[8192]), "powers of two"),
    (dict(spectral_heads=[256, 256]), "each frame length once"),
    (dict(model="specgan", kernel_len=5, phase_shuffle=0, spectral_heads=[256]),
     "already reads spectrograms"),
    (dict(model="specgan", kernel_len=5, phase_shuffle=0, minibatch_std=True),
     "no minibatch feature"),
    (dict(model="specgan", kernel_len=5, phase_shuffle=0, spectrogram_head=True),
     "needs spectrogram_head=False"),
])
def test_bad_recipe_settings_are_refused_by_name(values, message):
    with pytest.raises(ValueError, match=message):
        GANConfig(**values)


def test_log_magnitude_stft_matches_numpy_and_round_trips_its_config():
    rng = np.random.default_rng(1)
    audio = rng.uniform(-1, 1, (2, 1024, 1)).astype("float32")
    layer = LogMagnitudeSTFT(64)
    out = layer(audio).numpy()
    assert out.shape == (2, 64, 33)  # a hop of 16 samples, the end zero-padded
    frame = audio[0, 16:80, 0] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(64) / 64))
    expected = np.log(np.abs(np.fft.rfft(frame)) ** 2 + (64 / 4) ** 2 * 1e-6)
    np.testing.assert_allclose(out[0, 1], expected, rtol=1e-3, atol=1e-3)
    again = LogMagnitudeSTFT.from_config(layer.get_config())
    assert (again.frame_length, again.hop_length) == (64, None)
    hopped = LogMagnitudeSTFT(64, 32)
    np.testing.assert_allclose(hopped(audio).numpy()[0, 1], out[0, 2], rtol=1e-5, atol=1e-5)
    assert LogMagnitudeSTFT.from_config(hopped.get_config()).hop_length == 32


def test_a_discriminator_with_spectral_heads_saves_and_loads(tmp_path):
    d = build_discriminator(model_dim=2, kernel_len=5, spectral_heads=[64, 512],
                            minibatch_std=True)
    path = str(tmp_path / "d.keras")
    d.save(path)
    again = keras.saving.load_model(path)
    audio = np.random.default_rng(2).uniform(-1, 1, (3, 16384, 1)).astype("float32")
    np.testing.assert_allclose(again(audio).numpy(), d(audio).numpy(), rtol=1e-5, atol=1e-6)
    names = [layer.name for layer in d.layers]
    assert {"spectral_64_logit", "spectral_512_logit", "logit_sum", "minibatch_std"} <= set(names)


@pytest.mark.parametrize("slice_len", [16384, 32768])
def test_the_spectrogram_head_adds_a_2d_critic_of_the_log_spectrogram(tmp_path, slice_len):
    d = build_discriminator(slice_len=slice_len, model_dim=2, kernel_len=5,
                            spectrogram_head=True)
    plain = build_discriminator(slice_len=slice_len, model_dim=2, kernel_len=5)
    image = d.get_layer("spectrogram_image").output
    assert tuple(image.shape) == (None, slice_len // 128, 129, 1)
    # Five 5x5 convolutions, d to 16d filters, and a dense logit: 3 + ... parameters more.
    head = sum(25 * cin * cout + cout for cin, cout in zip([1, 2, 4, 8, 16], [2, 4, 8, 16, 32]))
    assert d.count_params() - plain.count_params() == head + 32 + 1
    path = str(tmp_path / "d.keras")
    d.save(path)
    again = keras.saving.load_model(path)
    audio = np.random.default_rng(3).uniform(-1, 1, (2, slice_len, 1)).astype("float32")
    logits = again(audio).numpy()
    assert logits.shape == (2, 1)
    np.testing.assert_allclose(logits, d(audio).numpy(), rtol=1e-5, atol=1e-6)
    # The logit is D's own plus the head's.
    waveform_only = keras.Model(d.inputs, d.get_layer("logit").output)
    head_only = keras.Model(d.inputs, d.get_layer("spectrogram_logit").output)
    np.testing.assert_allclose(logits, waveform_only(audio).numpy() + head_only(audio).numpy(),
                               rtol=1e-5, atol=1e-6)


def test_minibatch_feature_is_the_mean_feature_spread_and_near_zero_for_copies():
    x = np.random.default_rng(3).normal(size=(4, 6, 3)).astype("float32")
    out = MinibatchStdDev()(x).numpy()
    assert out.shape == (4, 6, 4)
    np.testing.assert_allclose(out[..., :3], x)
    np.testing.assert_allclose(out[..., 3], np.mean(np.std(x, axis=0)), rtol=1e-4)
    copies = MinibatchStdDev()(np.repeat(x[:1], 4, axis=0)).numpy()
    assert np.max(copies[..., 3]) < 1e-3


def test_check_frame_lengths_accepts_powers_of_two():
    assert check_frame_lengths(["256", 1024], 16384) == [256, 1024]


def test_the_log_floor_is_60_db_below_a_full_scale_sinusoid():
    n = 256
    tone = np.sin(2 * np.pi * 32 * np.arange(4 * n) / n).astype("float32")[None, :, None]
    peak = np.exp(LogMagnitudeSTFT(n)(tone).numpy()[0, 2].max())
    assert 10 * np.log10(peak / log_floor(n)) == pytest.approx(60.0, abs=0.5)


def test_recipe_values_yield_to_given_ones_and_unknown_recipes_are_named():
    fast = recipes.with_recipe("fast", {})
    assert fast == {"n_critic": 1, "d_learning_rate": 4e-4, "spectral_heads": [256, 1024],
                    "upsample": "nearest"}
    assert recipes.with_recipe("fast", {"n_critic": 2})["n_critic"] == 2
    specgan = recipes.with_recipe("fast", {"model": "specgan"})
    assert "spectral_heads" not in specgan and "upsample" not in specgan
    assert specgan["model"] == "specgan"
    assert recipes.with_recipe("paper", {"seed": 3}) == {"seed": 3}
    GANConfig.for_model(**specgan)
    GANConfig(**fast)
    with pytest.raises(ValueError, match="recipe must be one of"):
        recipes.recipe_values("quick", "wavegan")


def test_benchmark_variants_take_the_recipe_and_config_fields():
    configs = variant_configs(["baseline", "fast+d_learning_rate=0.001", "loss=hinge+n_critic=1",
                               "fast+spectral_heads=", "spectral_heads=256:1024"], 0.999, [])
    assert configs["spectral_heads=256:1024"] == {"spectral_heads": [256, 1024]}
    assert configs["baseline"] == {}
    assert configs["fast+d_learning_rate=0.001"]["d_learning_rate"] == 0.001
    assert configs["fast+d_learning_rate=0.001"]["n_critic"] == 1
    assert configs["loss=hinge+n_critic=1"] == {"loss": "hinge", "n_critic": 1}
    assert configs["fast+spectral_heads="]["spectral_heads"] == []
    with pytest.raises(ValueError, match="<config field>=<value>"):
        variant_configs(["no_such_field=1"], 0.999, [])


def test_train_py_recipe_fast_writes_its_settings_and_given_flags_win(tmp_path):
    data = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    train_dir = tmp_path / "run"
    tiny = ["--model_dim=2", "--batch_size=2", "--latent_dim=8", "--kernel_len=5",
            "--train_steps=2", "--save_every_steps=1", "--preview_every_steps=0",
            "--export=false"]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--recipe=fast",
                           "--d_learning_rate=0.001", "--spectrogram_head", f"--data_dir={data}",
                           f"--train_dir={train_dir}",
                           *tiny], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    config = json.loads((train_dir / "config.json").read_text())
    assert (config["loss"], config["n_critic"], config["d_learning_rate"]) == \
        ("wgan-gp", 1, 0.001)
    assert config["spectral_heads"] == recipes.recipe_values("fast", "wavegan")["spectral_heads"]
    assert config["spectrogram_head"] is True and config["upsample"] == "nearest"
    refused = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--loss=hinge",
                              f"--data_dir={data}", f"--train_dir={train_dir}", *tiny],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 1 and "loss" in refused.stderr, refused.stderr


def test_a_resumed_run_keeps_its_architecture_and_takes_its_models_recipe():
    saved = GANConfig.for_model("specgan")
    assert recipes.with_recipe("fast", {}, saved=saved) == {"n_critic": 1,
                                                             "d_learning_rate": 4e-4}
    older_fast = GANConfig(upsample="zeros", spectral_heads=[256, 1024])
    resumed = recipes.with_recipe("fast", {"upsample": "nearest"}, saved=older_fast)
    assert resumed == {"n_critic": 1, "d_learning_rate": 4e-4, "upsample": "nearest"}
    assert recipes.with_recipe("paper", {"seed": 2}, saved=older_fast) == {"seed": 2}


def test_train_py_resumes_a_run_started_before_the_recipe_changed(tmp_path):
    data = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    train_dir = tmp_path / "run"
    tiny = ["--model_dim=2", "--batch_size=2", "--latent_dim=8", "--kernel_len=5",
            "--save_every_steps=1", "--preview_every_steps=0", "--export=false",
            f"--data_dir={data}", f"--train_dir={train_dir}"]
    train_py = [sys.executable, os.path.join(ROOT, "train.py")]
    first = subprocess.run([*train_py, "--recipe=fast", "--upsample=zeros", "--train_steps=1",
                            *tiny], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    again = subprocess.run([*train_py, "--recipe=fast", "--train_steps=2", *tiny],
                           capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    config = json.loads((train_dir / "config.json").read_text())
    assert (config["upsample"], config["n_critic"]) == ("zeros", 1)
    assert checkpoint_number(latest_checkpoint(str(train_dir))) == 2
    refused = subprocess.run([*train_py, "--recipe=fast", "--upsample=nearest",
                              "--train_steps=3", *tiny],
                             capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert refused.returncode == 1 and "upsample: saved 'zeros'" in refused.stderr


def test_feature_matching_adds_the_mean_activation_gap_to_the_generator_loss():
    keras.utils.set_random_seed(4)
    gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2, kernel_len=5),
                     build_discriminator(model_dim=2, kernel_len=5, phase_shuffle_rad=0),
                     loss="hinge", n_critic=1, latent_dim=LATENT, seed=0, feature_matching=2.0)
    z = tf.random.stateless_uniform((3, LATENT), (5, 6), -1.0, 1.0)
    fake = gan.generator(z)
    plain = float(gan._generator_loss(z, None, None, None))
    same = float(gan._generator_loss(z, None, None, fake))
    assert same == pytest.approx(plain, abs=1e-6)
    real = tf.random.stateless_uniform((3, 16384, 1), (7, 8), -0.5, 0.5)
    features = gan.critic_features(real)
    fake_features = gan.critic_features(fake)
    gap = np.mean([np.mean(np.abs(np.mean(f.numpy(), 0) - np.mean(r.numpy(), 0)))
                   for f, r in zip(fake_features[:-1], features[:-1])])
    assert len(features) == 6  # five LeakyReLU activations and the logit
    with_real = float(gan._generator_loss(z, None, None, real))
    assert with_real == pytest.approx(plain + 2.0 * gap, rel=1e-4)
