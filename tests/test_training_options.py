"""Training options for scale, speed and scoring: strategy, mixed precision, XLA, eval hook."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from wavegan_tf import runs
from wavegan_tf.training import checkpoints, loop, settings
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.eval.during_training import BEST_FILENAME, EVAL_LOG_FILENAME
from wavegan_tf.serving.loading import load_model_for_generation

from support import MIRRORED_SCRIPT, free_ports, tiny_classifier

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


def _options(data_dir, **values):
    return dict(dict(data_dir=data_dir, train_steps=2, save_every_steps=2, save_every_secs=0,
                     preview_every_steps=0, export=False), **values)


def _ckpt_dtypes(train_dir, step):
    reader = tf.train.load_checkpoint(
        os.path.join(checkpoints.checkpoint_dir(train_dir), f"ckpt-{step}"))
    return {name: dtype for name, dtype in reader.get_variable_to_dtype_map().items()
            if "/_trainable_variables/" in name}


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_float32_weights_and_restores_policy(tmp_path, data_dir, policy):
    before = keras.mixed_precision.global_policy().name
    train_dir = str(tmp_path / "run")
    result = runs.train(train_dir, TINY, _options(data_dir, mixed_precision=policy),
                        verbose=0)
    assert result.step == 2
    assert keras.mixed_precision.global_policy().name == before
    dtypes = _ckpt_dtypes(train_dir, 2)
    assert dtypes and set(dtypes.values()) == {tf.float32}
    with open(os.path.join(train_dir, settings.OPTIONS_FILENAME)) as f:
        assert json.load(f)["mixed_precision"] == policy
    audio, _ = sf.read(os.path.join(train_dir, "previews", "step_2.wav"))
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0


def test_float16_cannot_be_switched_on_resume(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    runs.train(train_dir, TINY, _options(data_dir), verbose=0)
    with pytest.raises(ValueError, match="mixed_precision='mixed_float16'.*loss scale"):
        runs.train(train_dir, {}, {"mixed_precision": "mixed_float16", "train_steps": 3},
                   verbose=0)
    # bfloat16 keeps the optimizer state's layout: the run continues under it.
    result = runs.train(train_dir, {}, {"mixed_precision": "mixed_bfloat16",
                                        "train_steps": 3}, verbose=0)
    assert (result.start_step, result.step) == (2, 3)


def test_jit_compile_builds_an_xla_train_step_and_trains(tmp_path, data_dir):
    assert GANConfig(**TINY).build_gan(jit_compile=True).jit_compile is True
    assert GANConfig(**TINY).build_gan().jit_compile is False
    train_dir = str(tmp_path / "run")
    result = runs.train(train_dir, TINY, _options(data_dir, jit_compile=True), verbose=0)
    assert result.step == 2 and os.path.exists(result.checkpoint + ".index")


@pytest.mark.parametrize("values, message", [
    (dict(strategy="gpus"), "strategy must be one of"),
    (dict(mixed_precision="float8"), "mixed_precision must be one of"),
    (dict(tpu="grpc://10.0.0.2:8470"), "only used with strategy 'tpu'"),
    (dict(eval_every_steps=5), "eval_every_steps needs eval_classifier"),
    (dict(eval_every_steps=5, eval_classifier="c.keras", strategy="multi_worker"),
     "not supported with strategy 'multi_worker'"),
    (dict(eval_n=0), "eval_n must be an integer >= 1"),
    (dict(micro_batches=0), "micro_batches must be an integer >= 1"),
])
def test_bad_scale_options_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        settings.TrainingOptions(**values)


def test_micro_batches_train_the_same_weights_and_may_change_on_resume(tmp_path, data_dir):
    config = dict(TINY, batch_size=4)
    whole = runs.train(str(tmp_path / "whole"), config, _options(data_dir), verbose=0)
    split_dir = str(tmp_path / "split")
    split = runs.train(split_dir, config, _options(data_dir, micro_batches=2), verbose=0)
    with open(os.path.join(split_dir, settings.OPTIONS_FILENAME)) as f:
        assert json.load(f)["micro_batches"] == 2
    a, b = tf.train.load_checkpoint(whole.checkpoint), tf.train.load_checkpoint(split.checkpoint)
    names = [n for n in a.get_variable_to_dtype_map() if "/_trainable_variables/" in n]
    assert len(names) > 10
    for name in names:
        np.testing.assert_allclose(a.get_tensor(name), b.get_tensor(name), rtol=1e-4, atol=1e-5)
    resumed = runs.train(split_dir, {}, {"train_steps": 3, "micro_batches": 4}, verbose=0)
    assert (resumed.start_step, resumed.step) == (2, 3)


def test_micro_batches_must_divide_the_replica_batch(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    with pytest.raises(ValueError, match=r"micro_batches=3 must divide the batch of each "
                                         r"replica: batch_size=4 over 1 replica\(s\) is 4"):
        runs.train(train_dir, dict(TINY, batch_size=4), _options(data_dir, micro_batches=3),
                   verbose=0)
    assert not os.path.exists(train_dir)


@pytest.fixture(scope="module")
def eval_classifier(tmp_path_factory):
    """A small untrained digit-style classifier: enough to produce scores that change."""
    return tiny_classifier(tmp_path_factory.mktemp("clf"))


def test_eval_every_steps_logs_scores_and_exports_the_best(tmp_path, data_dir,
                                                           eval_classifier):
    train_dir = str(tmp_path / "run")
    runs.train(train_dir, TINY, _options(
        data_dir, train_steps=4, eval_every_steps=2, eval_classifier=eval_classifier,
        eval_n=6), verbose=0)
    with open(os.path.join(train_dir, EVAL_LOG_FILENAME)) as f:
        lines = [json.loads(line) for line in f]
    assert [line["step"] for line in lines] == [2, 4]
    for line in lines:
        assert 1.0 <= line["inception_score"] <= 3.0 and line["n"] == 6
    assert lines[0]["best"] is True
    with open(os.path.join(train_dir, BEST_FILENAME)) as f:
        best = json.load(f)
    best_line = max(lines, key=lambda line: line["inception_score"])
    assert best["step"] == best_line["step"]
    assert best["inception_score"] == pytest.approx(best_line["inception_score"])
    model = load_model_for_generation(os.path.join(train_dir, "best"))
    audio = model.generate(np.zeros((2, TINY["latent_dim"]), np.float32))
    assert audio.shape == (2, 16384, 1)
    acc = event_accumulator.EventAccumulator(os.path.join(train_dir, loop.LOGS_SUBDIR),
                                             size_guidance={"tensors": 0})
    acc.Reload()
    steps = [event.step for event in acc.Tensors("eval/inception_score")]
    assert steps == [2, 4]


def test_resumed_eval_keeps_the_earlier_best(tmp_path, data_dir, eval_classifier):
    train_dir = str(tmp_path / "run")
    options = _options(data_dir, eval_every_steps=2, eval_classifier=eval_classifier, eval_n=6)
    runs.train(train_dir, TINY, options, verbose=0)
    with open(os.path.join(train_dir, BEST_FILENAME), "w") as f:
        json.dump({"step": 2, "inception_score": 99.0}, f)
    runs.train(train_dir, {}, {"train_steps": 4}, verbose=0)
    with open(os.path.join(train_dir, EVAL_LOG_FILENAME)) as f:
        lines = [json.loads(line) for line in f]
    assert [line["best"] for line in lines] == [True, False]
    with open(os.path.join(train_dir, BEST_FILENAME)) as f:
        assert json.load(f)["inception_score"] == 99.0


def _run_python(args, env=None, timeout=300):
    return subprocess.run([sys.executable] + args, capture_output=True, text=True, cwd=REPO,
                          env=dict(os.environ, **(env or {})), timeout=timeout)


def test_mirrored_over_two_devices_trains_saves_and_resumes_without_strategy(tmp_path,
                                                                            data_dir):
    train_dir = str(tmp_path / "run")
    config = dict(TINY, batch_size=4)
    proc = _run_python(["-c", MIRRORED_SCRIPT, train_dir, json.dumps(config),
                        json.dumps(_options(data_dir, export=True, preview_every_steps=2))])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result == {"replicas": 2, "step": 2, "export": os.path.join(train_dir, "export")}
    assert os.path.exists(os.path.join(train_dir, "previews", "step_2.wav"))
    # The checkpoint of the 2-replica run resumes on one device.
    resumed = runs.train(train_dir, {}, {"train_steps": 3}, verbose=0)
    assert (resumed.start_step, resumed.step) == (2, 3)


def test_cli_strategy_mirrored_trains(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    proc = _run_python([
        "train.py", "--train_dir", train_dir, "--data_dir", data_dir, "--strategy", "mirrored",
        "--model_dim", "2", "--batch_size", "2", "--n_critic", "1", "--latent_dim", "8",
        "--kernel_len", "5", "--train_steps", "1", "--noexport"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Strategy: mirrored (1 replica(s)" in proc.stderr
    with open(os.path.join(train_dir, settings.OPTIONS_FILENAME)) as f:
        assert json.load(f)["strategy"] == "mirrored"
    assert checkpoints.latest_checkpoint(train_dir).endswith("ckpt-1")


def test_cli_micro_batches_reach_the_run(tmp_path, data_dir):
    proc = _run_python(["train.py", "--train_dir", str(tmp_path / "run"), "--data_dir", data_dir,
                        "--batch_size", "6", "--micro_batches", "4"])
    assert proc.returncode == 1
    assert "error: micro_batches=4 must divide the batch of each replica: batch_size=6" \
        in proc.stderr


def test_cli_tpu_without_tpu_strategy_is_an_error(tmp_path):
    proc = _run_python(["train.py", "--train_dir", str(tmp_path / "run"),
                        "--tpu", "grpc://10.0.0.2:8470"])
    assert proc.returncode == 1
    assert "error: tpu='grpc://10.0.0.2:8470' is only used with strategy 'tpu'" in proc.stderr
    assert not os.path.exists(str(tmp_path / "run"))


def test_cli_multi_worker_two_processes_share_one_run(tmp_path, data_dir):
    train_dir = str(tmp_path / "run")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    args = ["train.py", "--train_dir", train_dir, "--data_dir", data_dir,
            "--strategy", "multi_worker", "--model_dim", "2", "--batch_size", "2",
            "--n_critic", "1", "--latent_dim", "8", "--kernel_len", "5", "--train_steps", "2",
            "--save_every_steps", "1", "--preview_every_steps", "1"]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable] + args, cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    assert "Strategy: multi_worker (2 replica(s))" in outputs[0][1]
    assert "not the chief" in outputs[1][1]
    assert sorted(os.listdir(os.path.join(train_dir, "previews"))) == \
        ["step_1.wav", "step_2.wav"]
    assert checkpoints.latest_checkpoint(train_dir).endswith("ckpt-2")
    assert os.path.isdir(os.path.join(train_dir, "export"))
    assert not os.path.exists(os.path.join(train_dir, ".lock"))
