"""Converting checkpoints of the original TF1 WaveGAN: same audio, same logits, same optimizer
updates, clear errors, and a training directory the other programs accept.

The checkpoints are written by ``tf.compat.v1`` graph code that follows the original's
``wavegan.py`` and ``train_wavegan.py``: the same variable scopes and names, batch norm after
the dense layer / convolution and before the activation (none in D's first layer, always the
batch's statistics in D), the post-processing filter after tanh, nearest-neighbour upsampling
by ``resize_nearest_neighbor`` then a stride-1 ``conv1d``, the longer slices' extra last layer,
and Adam / RMSProp slots from ``tf.train`` optimizers.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from support import snapshot
from wavegan_tf.cli import generate_wavs
from wavegan_tf import runs
from wavegan_tf.training import checkpoints, settings
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.serving.tf1_checkpoint import (convert_checkpoint, discriminator_variables,
                                       generator_variables)

v1 = tf.compat.v1
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TINY = dict(wavegan_latent_dim=8, wavegan_dim=2, wavegan_kernel_len=5, train_batch_size=2,
            wavegan_disc_nupdates=2, wavegan_disc_phaseshuffle=2)
BATCH = 3


def _original_args(**settings):
    """The original's argparse values for ``settings`` over its defaults (as in args.txt)."""
    args = dict(data_dir="None", data_sample_rate=16000, data_slice_len=16384,
                data_num_channels=1, data_first_slice=False, data_pad_end=False, mode="train",
                train_dir="./train", incept_metagraph_fp="./eval/inception/infer.meta",
                wavegan_latent_dim=100, wavegan_kernel_len=25, wavegan_dim=64,
                wavegan_batchnorm=False, wavegan_disc_nupdates=5, wavegan_loss="wgan-gp",
                wavegan_genr_upsample="zeros", wavegan_genr_pp=False, wavegan_genr_pp_len=512,
                wavegan_disc_phaseshuffle=2, train_batch_size=64)
    args.update(TINY)
    args.update(settings)
    return args


def _write_args_txt(path, args):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(f"{k},{v}" for k, v in sorted(args.items())))


# The original's layers, with tf.layers' variable names.
def _variable(name, shape, kind="weight"):
    # Kernels three times Glorot's variance: with Glorot's own, the tiny generator's ReLUs are
    # all dead in the default case and its audio is one constant, which a conversion that
    # dropped every kernel would match as well.
    initializers = {"weight": v1.variance_scaling_initializer(3.0, "fan_avg", "uniform"),
                    "small": v1.random_normal_initializer(stddev=0.1),
                    "positive": v1.random_uniform_initializer(0.5, 1.5)}
    return v1.get_variable(name, shape, initializer=initializers[kind])


def _dense(x, units):
    with v1.variable_scope("dense"):
        kernel = _variable("kernel", [x.shape[-1], units])
        return tf.matmul(x, kernel) + _variable("bias", [units], "small")


def _conv1d(x, filters, kernel_len, stride):
    with v1.variable_scope("conv1d"):
        kernel = _variable("kernel", [kernel_len, x.shape[-1], filters])
        return tf.nn.conv1d(x, kernel, stride, "SAME") + _variable("bias", [filters], "small")


def _conv2d_transpose(x, filters, kernel_len, stride):
    with v1.variable_scope("conv2d_transpose"):
        kernel = _variable("kernel", [1, kernel_len, filters, x.shape[-1]])
        shape = tf.stack([tf.shape(x)[0], 1, x.shape[1] * stride, filters])
        y = tf.nn.conv2d_transpose(x[:, None], kernel, shape, [1, 1, stride, 1], "SAME")
        return y[:, 0] + _variable("bias", [filters], "small")


def _upconv(x, filters, kernel_len, stride, upsample):
    if upsample == "zeros":
        return _conv2d_transpose(x, filters, kernel_len, stride)
    x = v1.image.resize_nearest_neighbor(x[:, None], [1, x.shape[1] * stride])[:, 0]
    return _conv1d(x, filters, kernel_len, 1)


def _batchnorm(x, training):
    with v1.variable_scope("batch_normalization"):
        gamma = _variable("gamma", [x.shape[-1]], "positive")
        beta = _variable("beta", [x.shape[-1]], "small")
        moving_mean = _variable("moving_mean", [x.shape[-1]], "small")
        moving_variance = _variable("moving_variance", [x.shape[-1]], "positive")
        mean, variance = tf.nn.moments(x, [0, 1]) if training else (moving_mean, moving_variance)
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, 1e-3)


def _generator(z, a):
    """The original's WaveGANGenerator (inference: batch norm with moving statistics) and
    post-processing filter."""
    bn = (lambda x: _batchnorm(x, False)) if a["wavegan_batchnorm"] else (lambda x: x)
    dim, kernel_len, slice_len = a["wavegan_dim"], a["wavegan_kernel_len"], a["data_slice_len"]
    dim_mul = 16 if slice_len == 16384 else 32
    strides = [4] * 5 + ([] if slice_len == 16384 else [2 if slice_len == 32768 else 4])
    with v1.variable_scope("z_project"):
        x = tf.reshape(_dense(z, 16 * dim * dim_mul), [-1, 16, dim * dim_mul])
        x = tf.nn.relu(bn(x))
    for i, stride in enumerate(strides):
        last = i == len(strides) - 1
        dim_mul //= 2
        filters = a["data_num_channels"] if last else (dim * dim_mul if i < 4 else dim)
        with v1.variable_scope(f"upconv_{i}"):
            x = _upconv(x, filters, kernel_len, stride, a["wavegan_genr_upsample"])
            x = x if last else bn(x)
        x = tf.nn.tanh(x) if last else tf.nn.relu(x)
    if a["wavegan_genr_pp"]:
        with v1.variable_scope("pp_filt"), v1.variable_scope("conv1d"):
            kernel = _variable("kernel", [a["wavegan_genr_pp_len"], 1, 1])
            x = tf.nn.conv1d(x, kernel, 1, "SAME")
    return x


def _discriminator(x, a):
    """The original's WaveGANDiscriminator with phase shuffle off."""
    bn = (lambda y: _batchnorm(y, True)) if a["wavegan_batchnorm"] else (lambda y: y)
    dim, kernel_len, slice_len = a["wavegan_dim"], a["wavegan_kernel_len"], a["data_slice_len"]
    strides = [4] * 5 + ([] if slice_len == 16384 else [2 if slice_len == 32768 else 4])
    for i, stride in enumerate(strides):
        with v1.variable_scope(f"downconv_{i}"):
            x = _conv1d(x, dim * 2 ** i, kernel_len, stride)
            x = x if i == 0 else bn(x)
        x = tf.maximum(0.2 * x, x)
    x = tf.reshape(x, [-1, x.shape[1] * x.shape[2]])
    with v1.variable_scope("output"):
        return _dense(x, 1)[:, 0]


def assert_audio_varies(audio):
    """The reference audio is not a constant or near-silence, and each z gives its own clip,
    so that matching it checks every generator kernel."""
    for clip in audio:
        assert len(np.unique(clip)) > 1000, len(np.unique(clip))
        assert np.std(clip) > 0.01 and np.max(np.abs(clip)) > 0.2
    assert np.min(np.std(audio[1:] - audio[:-1], axis=(1, 2))) > 0.01


def _optimizer(loss):
    if loss in ("wgan-gp", "dcgan"):
        return v1.train.AdamOptimizer(1e-4, beta1=0.5, beta2=0.9)
    return v1.train.RMSPropOptimizer(1e-4)


def write_original_checkpoint(train_dir, steps=0, drop=(), **settings):
    """Writes ``train_dir/model.ckpt-<steps>`` and ``args.txt`` of the original for
    ``settings``; with ``steps`` > 0 both optimizers first make that many updates (D
    ``n_critic`` times as many) from random gradients and their state is saved too, with 0 it
    is left out. Variables whose names start with one of ``drop`` are left out.

    Returns ``(prefix, reference)``: the original's audio for ``reference["z"]``, D's logits
    for ``reference["x"]`` and, after saving, the weights after one more update from the
    gradients ``reference["g_grads"]`` / ``reference["d_grads"]``.
    """
    a = _original_args(**settings)
    os.makedirs(train_dir, exist_ok=True)
    _write_args_txt(os.path.join(train_dir, "args.txt"), a)
    rng = np.random.default_rng(0)
    channels = a["data_num_channels"]
    z_value = rng.uniform(-1, 1, (BATCH, a["wavegan_latent_dim"])).astype("float32")
    x_value = rng.uniform(-1, 1, (BATCH, a["data_slice_len"], channels)).astype("float32")
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        z = v1.placeholder(tf.float32, [None, a["wavegan_latent_dim"]])
        x = v1.placeholder(tf.float32, [None, a["data_slice_len"], channels])
        with v1.variable_scope("G"):
            audio = _generator(z, a)
        with v1.variable_scope("D"):
            logits = _discriminator(x, a)
        global_step = v1.train.get_or_create_global_step()
        updates, grads = {}, {}
        for scope in ("G", "D"):
            variables = v1.get_collection(v1.GraphKeys.TRAINABLE_VARIABLES, scope=scope)
            grads[scope] = [v1.placeholder(tf.float32, v.shape) for v in variables]
            updates[scope] = (variables, _optimizer(a["wavegan_loss"]).apply_gradients(
                zip(grads[scope], variables), global_step=global_step if scope == "G" else None))
        saved = [v for v in v1.global_variables() if not v.op.name.startswith(drop)
                 and (steps or not _optimizer_state(v))]
        saver = v1.train.Saver(saved)
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())

            def update(scope):
                values = [0.1 * rng.standard_normal(p.shape.as_list()).astype("float32")
                          for p in grads[scope]]
                sess.run(updates[scope][1], dict(zip(grads[scope], values)))
                return values

            for _ in range(steps):
                for _ in range(a["wavegan_disc_nupdates"]):
                    update("D")
                update("G")
            reference = dict(z=z_value, x=x_value, audio=sess.run(audio, {z: z_value}),
                             logits=sess.run(logits, {x: x_value}))
            prefix = saver.save(sess, os.path.join(train_dir, "model.ckpt"),
                                global_step=steps)
            if steps:
                for scope in ("G", "D"):
                    names = [v.op.name for v in updates[scope][0]]
                    reference[f"{scope}_grads"] = dict(zip(names, update(scope)))
                    reference[f"{scope}_after"] = dict(zip(names,
                                                           sess.run(updates[scope][0])))
    return prefix, reference


def _optimizer_state(variable):
    """True for the optimizers' slots and Adam's beta powers."""
    name = variable.op.name
    return name.rsplit("/", 1)[-1] in ("Adam", "Adam_1", "RMSProp", "RMSProp_1") or \
        "_power" in name


def _restored(train_dir):
    """(config, G, D, step, gan) restored from the converted directory like a resumed run."""
    config = GANConfig.load(train_dir)
    gan = config.build_gan()
    step = tf.Variable(0, dtype=tf.int64)
    prefix, _ = checkpoints.usable_checkpoint(train_dir)
    checkpoints.make_checkpoint(gan, step).restore(prefix).assert_existing_objects_matched()
    return config, gan, int(step.numpy())


def _logits_without_phase_shuffle(discriminator, x, batchnorm):
    """D's logits as the original computes them: batch statistics (training) in batch norm,
    phase shuffle off for a deterministic comparison."""
    for layer in discriminator.layers:
        if layer.name.startswith("phase_shuffle"):
            layer.rad = 0
    return discriminator(x, training=batchnorm).numpy()[:, 0]


def _original_name(variable_path, scope, config):
    """The original's name of one of our G/D variables, by the converter's own tables."""
    table = generator_variables(config) if scope == "G" else discriminator_variables(config)
    return {f"{layer}/{attribute}": name for name, layer, attribute in table}[variable_path]


CASES = {
    "plain_adam": dict(steps=2),
    "batchnorm_rmsprop": dict(steps=1, wavegan_batchnorm=True, wavegan_loss="lsgan"),
    "post_processing_filter": dict(wavegan_genr_pp=True, wavegan_genr_pp_len=8),
    "nearest_upsampling_65536": dict(wavegan_genr_upsample="nn", data_slice_len=65536),
    "batchnorm_32768": dict(wavegan_batchnorm=True, data_slice_len=32768),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_converted_models_match_the_original(tmp_path, case):
    settings = CASES[case]
    prefix, reference = write_original_checkpoint(str(tmp_path / "old"), **settings)
    assert_audio_varies(reference["audio"])
    if settings.get("wavegan_genr_pp"):
        with pytest.raises(ValueError, match=r"do not use: \['G/pp_filt/conv1d/kernel'\]"):
            convert_checkpoint(prefix, str(tmp_path / "new"),
                               overrides={"wavegan_genr_pp": "False"})
    result = convert_checkpoint(prefix, str(tmp_path / "new"))
    config, gan, step = _restored(str(tmp_path / "new"))
    assert step == result.step == settings.get("steps", 0)
    assert config.slice_len == settings.get("data_slice_len", 16384)
    assert config.model_dim == 2 and config.kernel_len == 5 and config.n_critic == 2
    audio = gan.generator(reference["z"], training=False).numpy()
    assert np.max(np.abs(audio - reference["audio"])) <= 1e-5
    logits = _logits_without_phase_shuffle(gan.discriminator, reference["x"], config.batchnorm)
    np.testing.assert_allclose(logits, reference["logits"], rtol=1e-4, atol=1e-5)
    assert result.optimizer_state == ("converted" if settings.get("steps") else "fresh")
    if not settings.get("steps"):
        return
    # One more update from the same gradients moves every weight as the original's did.
    for scope, model, optimizer in (("G", gan.generator, gan.g_optimizer),
                                    ("D", gan.discriminator, gan.d_optimizer)):
        names = [_original_name(v.path, scope, config) for v in model.trainable_variables]
        grads = [reference[f"{scope}_grads"][name].reshape(variable.shape)
                 for name, variable in zip(names, model.trainable_variables)]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        for name, variable in zip(names, model.trainable_variables):
            expected = reference[f"{scope}_after"][name]
            np.testing.assert_allclose(variable.numpy(), expected.reshape(variable.shape),
                                       atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def plain_checkpoint(tmp_path_factory):
    """A plain original checkpoint after 2 steps, with its optimizer slots."""
    old = tmp_path_factory.mktemp("old") / "train"
    prefix, _ = write_original_checkpoint(str(old), steps=2, data_dir="/nowhere/sc09")
    return prefix


def test_converted_run_generates_trains_on_and_exports(tmp_path, plain_checkpoint):
    out = str(tmp_path / "converted")
    convert_checkpoint(plain_checkpoint, out)
    with open(os.path.join(out, "converted_from.json"), encoding="utf-8") as f:
        provenance = json.load(f)
    assert provenance["step"] == 2 and provenance["optimizer_state"] == "converted"
    assert settings.TrainingOptions.load(out).data_dir == "/nowhere/sc09"
    written = generate_wavs.run_generation(out, str(tmp_path / "clips"), n=2)
    assert len(written) == 2 and sf.info(written[0]).frames == 16384
    data_dir = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    result = runs.train(out, {}, dict(data_dir=data_dir, train_steps=3, save_every_steps=0,
                                      preview_every_steps=0), verbose=0)
    assert (result.start_step, result.step) == (2, 3)
    assert checkpoints.checkpoint_number(result.checkpoint) == 3
    assert os.path.isfile(os.path.join(result.export_dir, "generator.keras"))


def test_a_folder_finds_its_newest_checkpoint_and_settings_can_be_overridden(
        tmp_path, plain_checkpoint):
    result = convert_checkpoint(os.path.dirname(plain_checkpoint), str(tmp_path / "new"),
                                overrides={"data_sample_rate": "22050"})
    assert result.checkpoint == plain_checkpoint
    assert GANConfig.load(str(tmp_path / "new")).sample_rate == 22050


def _copy_without_args_txt(prefix, folder):
    os.makedirs(folder)
    for name in os.listdir(os.path.dirname(prefix)):
        if name.startswith(os.path.basename(prefix) + "."):
            shutil.copy(os.path.join(os.path.dirname(prefix), name), folder)
    return os.path.join(folder, os.path.basename(prefix))


def test_without_args_txt_the_defaults_are_checked_against_the_shapes(
        tmp_path, plain_checkpoint):
    copy = _copy_without_args_txt(plain_checkpoint, str(tmp_path / "bare"))
    out = tmp_path / "new"
    with pytest.raises(ValueError, match=r"'G/z_project/dense/kernel'.*shape \[8, 512\].*"
                                         r"\[100, 16384\]"):
        convert_checkpoint(copy, str(out))
    assert not out.exists()
    overrides = {name: str(value) for name, value in TINY.items()}
    convert_checkpoint(copy, str(out), overrides=overrides)
    assert GANConfig.load(str(out)).latent_dim == 8


def test_missing_variable_is_named_and_nothing_is_written(tmp_path):
    prefix, _ = write_original_checkpoint(str(tmp_path / "old"),
                                          drop=("D/downconv_3/conv1d/bias",))
    out = tmp_path / "new"
    with pytest.raises(ValueError, match="no variable 'D/downconv_3/conv1d/bias'"):
        convert_checkpoint(prefix, str(out))
    assert not out.exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".new")]


def test_a_generator_only_checkpoint_gets_a_fresh_discriminator_and_optimizers(tmp_path):
    prefix, reference = write_original_checkpoint(str(tmp_path / "old"), steps=1, drop=("D/",))
    assert_audio_varies(reference["audio"])
    result = convert_checkpoint(prefix, str(tmp_path / "new"))
    assert (result.discriminator, result.optimizer_state) == ("fresh", "fresh")
    _, gan, step = _restored(str(tmp_path / "new"))
    assert step == 1 and int(gan.g_optimizer.iterations.numpy()) == 0
    audio = gan.generator(reference["z"], training=False).numpy()
    assert np.max(np.abs(audio - reference["audio"])) <= 1e-5


def test_settings_that_do_not_fit_name_the_variable_and_leave_out_untouched(
        tmp_path, plain_checkpoint):
    out = tmp_path / "new"
    out.mkdir()
    with pytest.raises(ValueError, match=r"'G/upconv_0/conv2d_transpose/kernel'.*\[1, 7, "):
        convert_checkpoint(plain_checkpoint, str(out), overrides={"wavegan_kernel_len": "7"})
    with pytest.raises(ValueError, match=r"no variable 'G/upconv_0/conv1d/kernel'.*"
                                         r"wavegan_genr_upsample"):
        convert_checkpoint(plain_checkpoint, str(out), overrides={"wavegan_genr_upsample": "nn"})
    with pytest.raises(ValueError, match=r"\['Adam', 'Adam_1'\] optimizer slots.*wavegan_loss"):
        convert_checkpoint(plain_checkpoint, str(out), overrides={"wavegan_loss": "wgan"})
    assert os.listdir(out) == []


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    bogus = tmp_path / "model.ckpt-5"
    bogus.write_text("not a checkpoint")
    (tmp_path / "model.ckpt-5.index").write_text("not an index either")
    with pytest.raises(ValueError, match="'.*model.ckpt-5' is not a readable TensorFlow "
                                         "checkpoint"):
        convert_checkpoint(str(bogus), str(tmp_path / "new"))
    with pytest.raises(FileNotFoundError, match="no TensorFlow checkpoint in the folder"):
        convert_checkpoint(str(tmp_path), str(tmp_path / "new"))
    assert not (tmp_path / "new").exists()


def test_an_existing_run_is_never_overwritten(tmp_path, plain_checkpoint):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")
    before = snapshot(str(out))
    with pytest.raises(ValueError, match="already exists and is not empty"):
        convert_checkpoint(plain_checkpoint, str(out))
    assert snapshot(str(out)) == before


def test_command_line(tmp_path, plain_checkpoint):
    copy = _copy_without_args_txt(plain_checkpoint, str(tmp_path / "bare"))
    args_txt = os.path.join(os.path.dirname(plain_checkpoint), "args.txt")
    out = tmp_path / "new"
    command = [sys.executable, os.path.join(ROOT, "convert_tf1.py"), "--checkpoint", copy,
               "--out", str(out), "--args_txt", args_txt]
    done = subprocess.run(command + ["--arg", "data_sample_rate,8000"], capture_output=True,
                          text=True, cwd=tmp_path, env=ENV, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "step 2" in done.stdout and "optimizer state: converted" in done.stdout
    config = GANConfig.load(str(out))
    assert (config.sample_rate, config.latent_dim) == (8000, 8)
    failed = subprocess.run(command[:-2] + ["--arg", "wavegan_size,3"], capture_output=True,
                            text=True, cwd=tmp_path, env=ENV, timeout=300)
    assert failed.returncode == 1
    assert "error:" in failed.stderr and "'wavegan_size,3'" in failed.stderr
