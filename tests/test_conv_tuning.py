"""The tuned convolution plan: timing, the per-machine cache, its use in training and the CLI."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf import build_discriminator, build_generator, runs
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.cpu import conv_tuning, polyphase_conv
from wavegan_tf.cpu.conv_tuning import Shape
from wavegan_tf.cpu.polyphase_conv import Plan, PolyphaseConv1D, conv_formulation
from wavegan_tf.training import settings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = Shape(batch=2, dtype="float32", steps=8, in_channels=3, out_channels=4, kernel_len=25,
              stride=4)
TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)

pytestmark = pytest.mark.usefixtures("onednn_unlimited")


def _timings(forward=(2.0, 1.0), input_gradient=(1.0, 2.0), kernel_gradient=(3.0, 1.0)):
    return {"forward": forward, "input_gradient": input_gradient,
            "kernel_gradient": kernel_gradient}


def _cache(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _no_timing(shape):
    raise AssertionError(f"timed {shape} although the cache holds it")


def test_tune_times_each_product_both_ways_and_caches_the_faster(tmp_path):
    path = str(tmp_path / "plans" / "conv_plans.json")
    plans = conv_tuning.tune([SHAPE], path, log=lambda line: None)
    plan, timings = plans[SHAPE]
    assert set(timings) == set(conv_tuning.PRODUCTS)
    for product in conv_tuning.PRODUCTS:
        standard, matmul = timings[product]
        assert 0 < standard < 1 and 0 < matmul < 1
        assert getattr(plan, product) == (matmul < standard)
    content = _cache(path)
    assert content["format"] == conv_tuning.CACHE_FORMAT and content["version"] == 1
    entries = content["machines"][conv_tuning.machine_key()]
    assert entries[conv_tuning.shape_key(SHAPE)]["forward"] == list(timings["forward"])


def test_a_cached_shape_is_not_timed_again_unless_retuned(tmp_path, monkeypatch):
    path = str(tmp_path / "conv_plans.json")
    monkeypatch.setattr(conv_tuning, "time_products", lambda shape: _timings())
    conv_tuning.tune([SHAPE], path)
    monkeypatch.setattr(conv_tuning, "time_products", _no_timing)
    plan, timings = conv_tuning.tune([SHAPE], path)[SHAPE]
    assert plan == Plan(forward=True, input_gradient=False, kernel_gradient=True)
    assert timings == _timings()
    monkeypatch.setattr(conv_tuning, "time_products",
                        lambda shape: _timings(forward=(1.0, 2.0)))
    plan, _ = conv_tuning.tune([SHAPE], path, retune=True)[SHAPE]
    assert plan.forward is False
    assert _cache(path)["machines"][conv_tuning.machine_key()][
        conv_tuning.shape_key(SHAPE)]["forward"] == [1.0, 2.0]


def test_the_machine_key_names_cpu_threads_tensorflow_and_isa_limit(monkeypatch):
    key = conv_tuning.machine_key()
    assert f"tensorflow={tf.__version__}" in key and "isa=native" in key
    assert "threads=" in key and not key.startswith("|")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert conv_tuning.machine_key() == key.replace("isa=native", "isa=AVX2")


@pytest.mark.parametrize("content,reason", [
    (b"\x00\xffnot json", "cannot be read as JSON"),
    (b'{"format": "something else", "machines": {}}', "not a convolution plan cache"),
    (b'[1, 2]', "not a convolution plan cache"),
    (b'{"format": "wavegan_tf.conv_plans", "version": 7, "machines": {}}', "version 7"),
])
def test_a_corrupt_or_foreign_cache_is_ignored_with_a_warning_and_rewritten(
        tmp_path, monkeypatch, caplog, content, reason):
    path = tmp_path / "conv_plans.json"
    path.write_bytes(content)
    monkeypatch.setattr(conv_tuning, "time_products", lambda shape: _timings())
    with caplog.at_level(logging.WARNING):
        plans = conv_tuning.tune([SHAPE], str(path))
    assert plans[SHAPE][0] == Plan(True, False, True)
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(path) in warning and reason in warning
    assert conv_tuning.shape_key(SHAPE) in _cache(path)["machines"][conv_tuning.machine_key()]


def test_malformed_entries_are_timed_again_and_other_machines_kept(tmp_path, monkeypatch,
                                                                     caplog):
    path = tmp_path / "conv_plans.json"
    key, other = conv_tuning.shape_key(SHAPE), Shape(*SHAPE[:2], 16, *SHAPE[3:])
    bad = _timings(forward=(-1.0, 2.0))
    path.write_text(json.dumps({"format": conv_tuning.CACHE_FORMAT, "version": 1, "machines": {
        conv_tuning.machine_key(): {key: {p: list(v) for p, v in bad.items()},
                                    conv_tuning.shape_key(other): {"forward": [1, 2]}},
        "Another CPU|threads=64|tensorflow=2.0|isa=native": {key: {
            p: list(v) for p, v in _timings().items()}}}}))
    timed = []
    monkeypatch.setattr(conv_tuning, "time_products",
                        lambda shape: timed.append(shape) or _timings(forward=(1.0, 3.0)))
    with caplog.at_level(logging.WARNING):
        plans = conv_tuning.tune([SHAPE], str(path))
    assert timed == [SHAPE] and plans[SHAPE][0].forward is False
    assert "2 malformed entries" in caplog.text
    machines = _cache(path)["machines"]
    assert machines["Another CPU|threads=64|tensorflow=2.0|isa=native"][key]["forward"] == [2, 1]
    assert machines[conv_tuning.machine_key()][key]["forward"] == [1.0, 3.0]


def test_an_unwritable_cache_is_warned_about_and_the_plan_still_returned(tmp_path, monkeypatch,
                                                                         caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setattr(conv_tuning, "time_products", lambda shape: _timings())
    with caplog.at_level(logging.WARNING):
        plans = conv_tuning.tune([SHAPE], str(blocker / "conv_plans.json"))
    assert plans[SHAPE][0] == Plan(True, False, True)
    assert "Could not write the convolution plan cache" in caplog.text
    assert conv_tuning.CACHE_DIR_VARIABLE in caplog.text


def test_cache_path_follows_the_environment(tmp_path):
    assert conv_tuning.cache_path({"WAVEGAN_TF_CACHE_DIR": "/x"}) == "/x/conv_plans.json"
    assert conv_tuning.cache_path({"XDG_CACHE_HOME": "/c"}) == "/c/wavegan_tf/conv_plans.json"
    assert conv_tuning.cache_path({}).endswith(os.path.join(".cache", "wavegan_tf",
                                                            "conv_plans.json"))


def test_model_shapes_are_the_five_shared_shapes_of_g_and_d():
    generator, discriminator = build_generator(model_dim=4), build_discriminator(model_dim=4)
    shapes = conv_tuning.model_shapes((generator, discriminator), batch=3)
    assert sorted((s.steps, s.in_channels, s.out_channels) for s in shapes) == [
        (16, 32, 64), (64, 16, 32), (256, 8, 16), (1024, 4, 8), (4096, 1, 4)]
    assert {(s.batch, s.dtype, s.kernel_len, s.stride) for s in shapes} == {
        (3, "float32", 25, 4)}


def _forward_graph_ops(layer, x):
    fn = tf.function(lambda inputs: layer(inputs, training=True))
    return {op.type for op in fn.get_concrete_function(x).graph.get_operations()}


def test_the_tuned_formulation_runs_an_adopted_plan_and_the_rule_without_one(monkeypatch):
    monkeypatch.setattr(polyphase_conv, "_state", {"formulation": "auto", "tuned": {}})
    layer = PolyphaseConv1D(4, 25, strides=4, padding="same")
    x = tf.random.normal([5, 32, 3])
    layer.build(x.shape)
    shape = polyphase_conv.planned_shape(layer, 5, x.shape, "float32")
    assert shape == (5, "float32", 8, 3, 4, 25, 4)
    with conv_formulation("tuned"):
        assert "Conv2D" in _forward_graph_ops(layer, x)  # the rule: TensorFlow's op here
        polyphase_conv.adopt_tuned_plans({shape: Plan(True, False, False)})
        ops = _forward_graph_ops(layer, x)
        tuned = layer(x, training=True)
    assert "Conv2D" not in ops and ops & {"MatMul", "BatchMatMulV3", "Einsum"}
    with conv_formulation("standard"):
        np.testing.assert_allclose(layer(x, training=True), tuned, rtol=1e-5, atol=1e-5)
    with conv_formulation("auto"):
        assert "Conv2D" in _forward_graph_ops(layer, x)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


def _train(train_dir, data_dir, conv_plan, **options):
    return runs.train(train_dir, TINY, dict(
        data_dir=data_dir, train_steps=1, save_every_secs=0, preview_every_steps=0,
        export=False, conv_plan=conv_plan, **options), verbose=0)


def test_training_tunes_into_the_cache_named_by_the_environment(tmp_path, data_dir,
                                                                monkeypatch):
    monkeypatch.setenv(conv_tuning.CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    _train(str(tmp_path / "rule"), data_dir, "auto")
    assert not (tmp_path / "cache").exists()
    looked_up = []
    monkeypatch.setattr(polyphase_conv, "_state", {"formulation": "auto", "tuned": {}})
    real_layer_plan = polyphase_conv.layer_plan
    monkeypatch.setattr(polyphase_conv, "layer_plan",
                        lambda shape: looked_up.append(tuple(shape)) or real_layer_plan(shape))
    result = _train(str(tmp_path / "tuned"), data_dir, "tuned", micro_batches=2)
    assert result.step == 1
    entries = _cache(tmp_path / "cache" / "conv_plans.json")["machines"][
        conv_tuning.machine_key()]
    models = (build_generator(model_dim=2, kernel_len=5, latent_dim=8),
              build_discriminator(model_dim=2, kernel_len=5))
    # With two micro-batches, the shapes at the replica's batch (G generating a critic update's
    # clips) and at each micro-batch of 1 (everything else).
    shapes = conv_tuning.model_shapes(models, 2) + conv_tuning.model_shapes(models, 1)
    assert sorted(entries) == sorted(conv_tuning.shape_key(s) for s in shapes)
    # Every layer the training step traced, at either batch, found its tuned plan (the
    # previews after training generate 8 clips, outside the tuned steps).
    in_steps = {shape for shape in looked_up if shape[0] in (1, 2)}
    assert {shape[0] for shape in in_steps} == {1, 2}
    assert in_steps <= set(polyphase_conv._state["tuned"])
    with open(os.path.join(str(tmp_path / "tuned"), settings.OPTIONS_FILENAME)) as f:
        assert json.load(f)["conv_plan"] == "tuned"


def test_an_unknown_conv_plan_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match=r"conv_plan must be one of \['tuned', 'auto', "
                                         r"'standard', 'polyphase'\], got conv_plan='fast'"):
        settings.TrainingOptions(conv_plan="fast")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), "--train_dir", str(tmp_path / "r"),
         "--conv_plan", "fast"], capture_output=True, text=True)
    assert result.returncode != 0 and "--conv_plan" in result.stderr


def _tune_cli(*args):
    return subprocess.run([sys.executable, "-m", "wavegan_tf", "tune", *args], cwd=REPO,
                          capture_output=True, text=True)


def test_tune_command_prints_the_table_and_fills_the_cache(tmp_path):
    cache = tmp_path / "plans.json"
    result = _tune_cli("--model_dim", "2", "--batch_size", "2", "--cache", str(cache))
    assert result.returncode == 0, result.stderr
    assert "timing 5 layer shape(s)" in result.stdout
    rows = [line for line in result.stdout.splitlines() if " ms  -> " in line]
    assert len(rows) == 15
    assert "sum of the 15 products: TensorFlow everywhere" in result.stdout
    assert len(_cache(cache)["machines"][conv_tuning.machine_key()]) == 5
    again = _tune_cli("--model_dim", "2", "--batch_size", "2", "--cache", str(cache))
    assert again.returncode == 0 and "timing" not in again.stdout
    assert [line for line in again.stdout.splitlines() if " ms  -> " in line] == rows


def test_tune_command_for_specgan_and_bad_sizes(tmp_path):
    result = _tune_cli("--model", "specgan", "--model_dim", "2", "--batch_size", "2",
                       "--cache", str(tmp_path / "p.json"))
    assert result.returncode == 0 and "nothing to tune" in result.stdout
    assert not (tmp_path / "p.json").exists()
    bad = _tune_cli("--model_dim", "0", "--cache", str(tmp_path / "p.json"))
    assert bad.returncode == 2 and "--model_dim must be a whole number >= 1, got 0" in bad.stderr


def test_tune_command_keys_precision_and_slice_length_and_retunes(tmp_path):
    cache = tmp_path / "plans.json"
    result = _tune_cli("--model_dim", "2", "--batch_size", "2", "--slice_len", "32768",
                       "--mixed_precision", "mixed_bfloat16", "--cache", str(cache))
    assert result.returncode == 0, result.stderr
    keys = sorted(_cache(cache)["machines"][conv_tuning.machine_key()])
    # Clips of 32768 samples take six convolutions in G and D (one of stride 2), all tuned in
    # bfloat16.
    assert f"timing {len(keys)} layer shape(s)" in result.stdout
    assert len(keys) >= 6 and all(key.startswith("bfloat16 batch=2 ") for key in keys)
    assert any(key.startswith("bfloat16 batch=2 32768x1->") for key in keys)
    again = _tune_cli("--model_dim", "2", "--batch_size", "2", "--slice_len", "32768",
                      "--mixed_precision", "mixed_bfloat16", "--cache", str(cache), "--retune")
    assert again.returncode == 0 and f"timing {len(keys)} layer shape(s)" in again.stdout


def test_tune_command_writes_a_cache_named_without_a_folder(tmp_path):
    result = subprocess.run([sys.executable, "-m", "wavegan_tf", "tune", "--model_dim", "2",
                             "--batch_size", "1", "--cache", "plans.json"], cwd=tmp_path,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO})
    assert result.returncode == 0, result.stderr
    assert len(_cache(tmp_path / "plans.json")["machines"][conv_tuning.machine_key()]) == 5


def test_tune_command_refuses_where_a_gpu_or_tpu_is_visible(tmp_path, monkeypatch, capsys):
    from wavegan_tf import __main__ as command

    monkeypatch.setattr(polyphase_conv, "accelerator_present", lambda: True)
    assert command.main(["tune", "--model_dim", "2", "--batch_size", "2", "--cache",
                         str(tmp_path / "p.json")]) == 2
    assert "a GPU or TPU is visible" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
