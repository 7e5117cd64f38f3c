"""Distributed training: strategies, data sharding and splitting, chief-only checkpoints, and
training on two replicas (MirroredStrategy) and two workers (MultiWorkerMirroredStrategy).

The host CPU must be split into logical devices before TensorFlow initialises its devices, so
the tests that train on several replicas run this file as a script in fresh processes
(``python tests/test_distribute.py mirrored`` or ``worker OUT_DIR``); the script asserts and
exits non-zero on the first failure.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from wavegan_tf import GANTrainer, build_discriminator, build_generator, critic_batches
from wavegan_tf.audio import data
from wavegan_tf.training import checkpoints, distribute

from support import free_ports

LATENT = 8
SLICE = 16384
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT_TIMEOUT_S = 240


# Single process, in-process tests.

def test_unknown_strategy_names_are_rejected():
    with pytest.raises(ValueError, match="strategy='gpu'"):
        distribute.make_strategy("gpu")


def test_a_tpu_address_needs_the_tpu_strategy():
    with pytest.raises(ValueError, match="tpu='grpc://10.0.0.2:8470'"):
        distribute.make_strategy("mirrored", tpu="grpc://10.0.0.2:8470")


def test_default_strategy_is_one_replica_and_chief():
    strategy = distribute.make_strategy("default")
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1
    assert distribute.is_chief(strategy)
    assert distribute.replica_batch_size(strategy, 64) == 64


@pytest.mark.parametrize("batch_size", [6, 0, 2.5])
def test_global_batch_must_divide_between_replicas(batch_size):
    four = types.SimpleNamespace(num_replicas_in_sync=4)
    with pytest.raises(ValueError, match=f"batch_size={batch_size!r}"):
        distribute.replica_batch_size(four, batch_size)
    assert distribute.replica_batch_size(four, 8) == 2


def _fake_strategy(cluster, task_type, task_id):
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
    return types.SimpleNamespace(cluster_resolver=resolver)


@pytest.mark.parametrize(
    "cluster, task_type, task_id, chief",
    [({"worker": ["a:1", "b:1"]}, "worker", 0, True),
     ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
     ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
     ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
     ({"worker": ["a:1"]}, None, None, True)],
)
def test_the_chief_is_the_chief_task_else_worker_zero(cluster, task_type, task_id, chief):
    assert distribute.is_chief(_fake_strategy(cluster, task_type, task_id)) is chief
    assert distribute.is_chief(types.SimpleNamespace(cluster_resolver=None))


@pytest.mark.parametrize("task_id", [0, 1])
def test_only_the_chief_keeps_checkpoint_files(tmp_path, monkeypatch, task_id):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    deleted, rmtree = [], shutil.rmtree
    monkeypatch.setattr(shutil, "rmtree", lambda path, **kw: (
        deleted.append(sorted(os.listdir(path))), rmtree(path, **kw)))
    strategy = _fake_strategy({"worker": ["a:1", "b:1"]}, "worker", task_id)
    variable = tf.Variable(3.0)
    manager = distribute.ChiefCheckpointManager(tf.train.Checkpoint(v=variable),
                                                str(tmp_path / "ckpt"), strategy, max_to_keep=1)
    for step in (1, 2):
        variable.assign(float(step))
        path = manager.save(checkpoint_number=step)
    if task_id == 0:
        assert path == manager.latest_checkpoint == str(tmp_path / "ckpt" / "ckpt-2")
        restored = tf.Variable(0.0)
        tf.train.Checkpoint(v=restored).restore(manager.latest_checkpoint)
        assert float(restored) == 2.0
    else:
        assert path is None and manager.latest_checkpoint is None
        assert not (tmp_path / "ckpt").exists()
        assert deleted == [["checkpoint", f"ckpt-{n}.data-00000-of-00001", f"ckpt-{n}.index"]
                           for n in (1, 2)]
    assert os.listdir(scratch) == []


def test_split_between_replicas_gives_each_replica_its_rows_of_every_critic_batch():
    stack = tf.reshape(tf.range(2 * 4 * 3, dtype=tf.float32), (2, 4, 3, 1))  # [n_critic, b, t, c]
    parts = list(distribute.split_between_replicas(tf.data.Dataset.from_tensors(stack), 2))
    assert len(parts) == 2
    for r, part in enumerate(parts):
        assert part.shape == (2, 2, 3, 1)
        np.testing.assert_array_equal(part, stack[:, 2 * r:2 * r + 2])


def test_on_one_device_the_dataset_is_the_plain_critic_batches(tmp_path):
    folder = _audio_folder(tmp_path / "audio", 5)
    strategy = tf.distribute.get_strategy()
    options = dict(slice_len=128, batch_size=2, seed=4)
    plain = critic_batches(data.audio_dataset(folder, **options), 2)
    distributed = distribute.distributed_audio_dataset(strategy, folder, 2, 2, seed=4,
                                                       slice_len=128)
    assert isinstance(distributed, tf.data.Dataset)
    for expected, got in zip(plain.take(3), distributed.take(3)):
        np.testing.assert_array_equal(got, expected)


def test_shard_seeds_keep_shard_zero_and_differ_between_shards():
    assert distribute.shard_seed(7, 0) == 7
    assert distribute.shard_seed(None, 3) is None
    assert len({distribute.shard_seed(7, i) for i in range(4)}) == 4


def _audio_folder(path, n_files):
    os.makedirs(path, exist_ok=True)
    for i in range(n_files):
        sf.write(os.path.join(path, f"f{i}.wav"), np.full(300 + 10 * i, (i + 1) / 10.0), 16000,
                 subtype="FLOAT")
    return str(path)


def test_audio_shards_split_the_files_between_workers(tmp_path):
    folder = _audio_folder(tmp_path / "audio", 5)
    whole = data.load_audio_store(folder, normalize=False)
    shards = [data.load_audio_store(folder, normalize=False, num_shards=2, shard_index=i)
              for i in range(2)]
    assert shards[0].paths == whole.paths[0::2] and shards[1].paths == whole.paths[1::2]
    np.testing.assert_array_equal(shards[1].lengths, [310, 330])
    np.testing.assert_allclose(np.unique(shards[1].audio), [0.2, 0.4])
    batch = next(iter(data.audio_dataset(folder, slice_len=256, batch_size=2, normalize=False,
                                         seed=0, num_shards=2, shard_index=1)))
    values = np.unique(batch.numpy())
    assert np.isclose(values[:, None], [0.2, 0.4]).any(axis=1).all(), values


@pytest.mark.parametrize(
    "num_shards, shard_index, message",
    [(2, 2, "shard_index=2"), (0, 0, "num_shards=0"), (2, -1, "shard_index=-1"),
     (1.5, 0, "num_shards=1.5"), (6, 0, "5 usable files, fewer than num_shards=6")],
)
def test_bad_shards_are_rejected(tmp_path, num_shards, shard_index, message):
    folder = _audio_folder(tmp_path / "audio", 5)
    with pytest.raises(ValueError, match=message):
        data.audio_dataset(folder, slice_len=256, batch_size=1, num_shards=num_shards,
                           shard_index=shard_index)


def test_single_device_z_and_alpha_are_the_seed_generators_plain_draws():
    gan = _gan("wgan-gp", tf.distribute.get_strategy(), seed=5)
    reference = keras.random.SeedGenerator(5)
    np.testing.assert_array_equal(
        gan.sample_z(3), keras.random.uniform((3, LATENT), -1.0, 1.0, seed=reference))
    np.testing.assert_array_equal(
        gan.sample_alpha(3), keras.random.uniform((3,), 0.0, 1.0, seed=reference))


# Several replicas, in subprocesses.

def _run_script(args, env=None):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args, cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process, name):
    try:
        output, _ = process.communicate(timeout=SCRIPT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{name} did not finish in {SCRIPT_TIMEOUT_S} s:\n{output[-4000:]}")
    assert process.returncode == 0, f"{name} failed:\n{output[-6000:]}"
    return output


def test_two_replicas_match_one_device_and_stay_in_sync():
    _finish(_run_script(["mirrored"]), "the MirroredStrategy script")


def test_two_workers_train_to_equal_weights_and_only_the_chief_saves(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = [
        _run_script(["worker", str(tmp_path)], env={"TF_CONFIG": json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    try:
        for i, process in enumerate(processes):
            _finish(process, f"worker {i}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    results = [json.loads((tmp_path / f"worker_{i}.json").read_text()) for i in range(2)]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["history"] == pytest.approx(results[1]["history"])
    weights = [np.load(tmp_path / f"worker_{i}.npz") for i in range(2)]
    assert weights[0].files == weights[1].files
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
    assert sorted(os.listdir(tmp_path / "ckpt")) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    # The checkpoint of two workers restores on one device, RNG state included.
    gan = _gan("wgan-gp", tf.distribute.get_strategy(), seed=9)
    step = tf.Variable(0, dtype=tf.int64)
    checkpoints.make_checkpoint(gan, step).restore(str(tmp_path / "ckpt" / "ckpt-3"))
    assert int(step) == 3
    restored = _named_weights(gan)
    for name in weights[0].files:
        np.testing.assert_array_equal(restored[name], weights[0][name])


# Shared by the tests and the scripts.

def _gan(loss, strategy, seed=1, sgd=False, phase_shuffle=2, faster=False):
    """A tiny WaveGAN built in ``strategy``'s scope; the same weights for the same seed.
    ``faster`` turns on weight averaging and every augmentation policy."""
    keras.utils.set_random_seed(seed)
    extras = dict(ema_decay=0.5, augment=("gain", "shift", "mask")) if faster else {}
    with strategy.scope():
        gan = GANTrainer(build_generator(latent_dim=LATENT, model_dim=2),
                      build_discriminator(model_dim=2, phase_shuffle_rad=phase_shuffle),
                      loss=loss, n_critic=2, latent_dim=LATENT, seed=seed, **extras)
        if sgd:  # plain gradient steps, so a wrongly scaled gradient shows in the weights
            gan.compile(g_optimizer=keras.optimizers.SGD(0.01),
                        d_optimizer=keras.optimizers.SGD(0.01))
        else:
            gan.compile()
    return gan


def _named_weights(gan):
    """G and D weights (and G's average), optimizer slots and the RNG state, as numpy arrays
    by name."""
    average = [] if gan.ema_generator is None else gan.ema_generator.weights
    variables = (gan.generator.weights + gan.discriminator.weights + average
                 + gan.g_optimizer.variables + gan.d_optimizer.variables
                 + [gan.seed_generator.state])
    return {f"{i}_{v.name}": np.asarray(v.numpy()) for i, v in enumerate(variables)}


def _audio(n=32, seed=0):
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (n, SLICE, 1)).astype("float32")


def _split_cpu(n):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)


def _mirrored_script():
    """One step on two replicas equals one step on one device with the same global batch
    (with weight averaging and augmentation for wgan-gp)."""
    _split_cpu(2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    audio, global_batch = _audio(), 4

    def make_batches(batch_size, num_shards, shard_index):
        assert (batch_size, num_shards, shard_index) == (global_batch, 1, 0)
        return tf.data.Dataset.from_tensor_slices(audio).batch(batch_size, drop_remainder=True)

    for loss in ("wgan-gp", "wgan"):
        one = _gan(loss, tf.distribute.get_strategy(), sgd=True, faster=loss == "wgan-gp")
        two = _gan(loss, strategy, sgd=True, faster=loss == "wgan-gp")
        before = _named_weights(one)
        h_one = one.fit(critic_batches(make_batches(global_batch, 1, 0), 2), steps_per_epoch=2,
                        verbose=0, shuffle=False).history
        h_two = two.fit(distribute.distribute_critic_batches(strategy, make_batches,
                                                             global_batch, 2),
                        steps_per_epoch=2, verbose=0, shuffle=False).history
        after_one, after_two = _named_weights(one), _named_weights(two)
        _check_same_updates(before, after_one, after_two, loss)
        for key, values in h_one.items():
            np.testing.assert_allclose(h_two[key], values, rtol=1e-4, atol=1e-6,
                                       err_msg=f"{loss}: metric {key}")
        _check_in_sync(two, strategy)
        if loss == "wgan":
            assert max(np.abs(w).max() for w in two.discriminator.get_weights()) <= 0.01 + 1e-7
    _check_replicas_draw_their_rows_of_one_global_draw(one, two, strategy)
    _check_checkpoints_restore_across_replica_counts(one, two, strategy)


def _check_same_updates(before, after_one, after_two, loss):
    """Both runs changed every variable by the same amount (to float rounding), and most
    variables changed: a gradient scaled by the replica count would show here. A delta is
    only resolved to the float32 spacing of the weights it is the difference of (``ulp``)."""
    moved = 0
    for name, start in before.items():
        delta_one, delta_two = after_one[name] - start, after_two[name] - start
        scale = np.abs(delta_one).max()
        ulp = np.spacing(np.abs(after_one[name]).max().astype("float32"))
        np.testing.assert_allclose(delta_two, delta_one, rtol=1e-3,
                                   atol=1e-3 * scale + 2 * ulp + 1e-9,
                                   err_msg=f"{loss}: update of {name}")
        moved += scale > 0
    assert moved > len(before) // 2, f"{loss}: only {moved} of {len(before)} variables moved"


def _check_in_sync(gan, strategy):
    """Every mirrored variable (weights, optimizer slots, seed states) equal on both replicas."""
    checked = 0
    for variable in gan.variables + gan.g_optimizer.variables + gan.d_optimizer.variables:
        parts = strategy.experimental_local_results(variable.value)
        if len(parts) > 1:
            for part in parts[1:]:
                np.testing.assert_array_equal(part.numpy(), parts[0].numpy(),
                                              err_msg=variable.path)
            checked += 1
    assert checked > 20, checked


def _check_replicas_draw_their_rows_of_one_global_draw(one, two, strategy):
    np.testing.assert_array_equal(one.seed_generator.state.numpy(),
                                  two.seed_generator.state.numpy())
    per_replica = strategy.run(lambda: two.sample_z(3))
    z0, z1 = (t.numpy() for t in strategy.experimental_local_results(per_replica))
    assert not np.allclose(z0, z1)
    np.testing.assert_array_equal(np.concatenate([z0, z1]), one.sample_z(6).numpy())
    alphas = strategy.experimental_local_results(strategy.run(lambda: two.sample_alpha(2)))
    np.testing.assert_array_equal(np.concatenate(alphas), one.sample_alpha(4).numpy())


def _check_checkpoints_restore_across_replica_counts(one, two, strategy):
    for source, target_strategy in ((two, tf.distribute.get_strategy()), (one, strategy)):
        directory = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"wavegan_ckpt_{os.getpid()}")
        manager = distribute.ChiefCheckpointManager(
            checkpoints.make_checkpoint(source, tf.Variable(2, dtype=tf.int64)), directory,
            strategy, max_to_keep=1)
        path = manager.save(checkpoint_number=2)
        fresh = _gan("wgan", target_strategy, seed=3, sgd=True)
        checkpoints.make_checkpoint(fresh, tf.Variable(0, dtype=tf.int64)).restore(
            path).assert_existing_objects_matched()
        expected, restored = _named_weights(source), _named_weights(fresh)
        for name in expected:
            np.testing.assert_array_equal(restored[name], expected[name], err_msg=name)
        if target_strategy is strategy:
            _check_in_sync(fresh, strategy)


def _worker_script(out_dir):
    """Three steps as one of the workers in TF_CONFIG; writes weights, history and role."""
    strategy = distribute.make_strategy("multi_worker")
    assert strategy.num_replicas_in_sync == 2
    task_id = strategy.cluster_resolver.task_id
    audio = _audio(64)

    def make_batches(batch_size, num_shards, shard_index):
        assert (batch_size, num_shards) == (2, 2)
        return (tf.data.Dataset.from_tensor_slices(audio).shard(num_shards, shard_index)
                .batch(batch_size, drop_remainder=True).repeat())

    gan = _gan("wgan-gp", strategy)
    history = gan.fit(distribute.distribute_critic_batches(strategy, make_batches, 4, 2),
                      steps_per_epoch=3, verbose=0).history
    step = tf.Variable(3, dtype=tf.int64)
    distribute.ChiefCheckpointManager(
        checkpoints.make_checkpoint(gan, step), os.path.join(out_dir, "ckpt"), strategy,
        max_to_keep=1).save(checkpoint_number=3)
    np.savez(os.path.join(out_dir, f"worker_{task_id}.npz"), **_named_weights(gan))
    with open(os.path.join(out_dir, f"worker_{task_id}.json"), "w") as f:
        json.dump({"chief": distribute.is_chief(strategy),
                   "history": {k: float(v[-1]) for k, v in history.items()}}, f)


if __name__ == "__main__":
    if sys.argv[1] == "mirrored":
        _mirrored_script()
    elif sys.argv[1] == "worker":
        _worker_script(sys.argv[2])
    else:
        raise ValueError(f"unknown script mode {sys.argv[1]!r}")
