"""Durability: SIGKILL drills on real processes, the run lock, damaged checkpoints and exports,
and saves that fail (a full disk is simulated; a blocked path is a real failure)."""

import errno
import glob
import json
import logging
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from wavegan_tf.files import atomic_files, locks
from wavegan_tf.serving import export, loading
from wavegan_tf import runs
from wavegan_tf.training import checkpoints
from wavegan_tf.training.config import GANConfig
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.training.previews import preview_z_path

from support import snapshot

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_PY = os.path.join(ROOT, "train.py")
GENERATE_PY = os.path.join(ROOT, "generate.py")
TINY = dict(model_dim=2, batch_size=2, n_critic=1, latent_dim=8, kernel_len=5)
TINY_FLAGS = [f"--{name}={value}" for name, value in TINY.items()]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return ensure_demo_dataset(str(tmp_path_factory.mktemp("data") / "drums"), num_clips=8)


@pytest.fixture(scope="module")
def three_steps(tmp_path_factory, data_dir):
    """A run trained for 3 steps with a checkpoint after each, not exported."""
    train_dir = str(tmp_path_factory.mktemp("runs") / "run")
    runs.train(train_dir, TINY, dict(data_dir=data_dir, train_steps=3, save_every_steps=1,
                                     save_every_secs=0, preview_every_steps=0,
                                     export=False), verbose=0)
    return train_dir


@pytest.fixture
def run_copy(three_steps, tmp_path):
    path = str(tmp_path / "run")
    shutil.copytree(three_steps, path)
    return path


def _data_file(train_dir, step):
    return os.path.join(checkpoints.checkpoint_dir(train_dir),
                        f"ckpt-{step}.data-00000-of-00001")


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _tensors(prefix):
    """Every variable of a checkpoint but the manager's save counter, read independently."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith(("save_counter", "_CHECKPOINTABLE_OBJECT_GRAPH"))}


def _newest_complete_step(train_dir):
    """The highest N whose ckpt-N reads back completely, found without the library."""
    for index in sorted(glob.glob(os.path.join(checkpoints.checkpoint_dir(train_dir),
                                               "ckpt-*.index")),
                        key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]), reverse=True):
        try:
            _tensors(index[:-len(".index")])
        except Exception:  # noqa: BLE001 -- any read failure means incomplete
            continue
        return int(index.rsplit("-", 1)[1].split(".")[0])
    return None


def _restored_state(train_dir, tmp_path):
    """Restores the run as the trainer does and writes the state back out for comparison."""
    gan = GANConfig.load(train_dir).build_gan()
    step = tf.Variable(0, dtype=tf.int64)
    resume_from = checkpoints.prepare_resume(train_dir)
    checkpoint = checkpoints.make_checkpoint(gan, step)
    checkpoint.restore(resume_from).assert_existing_objects_matched()
    out = checkpoint.write(str(tmp_path / "restored" / "state"))
    return resume_from, _tensors(out)


def _wait_for_checkpoint_after(train_dir, step, proc, timeout=120):
    deadline = time.time() + timeout
    while (_newest_complete_step(train_dir) or 0) <= step:
        assert proc.poll() is None, "the trainer exited early"
        assert time.time() < deadline, "no new checkpoint appeared"
        time.sleep(0.1)


def _start_trainer(train_dir, data_dir, log):
    return subprocess.Popen(
        [sys.executable, TRAIN_PY, *TINY_FLAGS, f"--data_dir={data_dir}",
         f"--train_dir={train_dir}", "--train_steps=100000", "--save_every_steps=1",
         "--preview_every_steps=1", "--keep_checkpoints=3", "--noexport"],
        cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)


# -- SIGKILL drills ----------------------------------------------------------------------------

def test_sigkill_while_training_then_rerun_resumes_the_newest_complete_checkpoint(
        tmp_path, data_dir):
    rng = random.Random(20260131)
    train_dir = str(tmp_path / "run")
    preview_z = None
    for kill in range(2):
        newest = _newest_complete_step(train_dir) or 0
        with open(tmp_path / f"log{kill}.txt", "w") as log:
            proc = _start_trainer(train_dir, data_dir, log)
            try:
                _wait_for_checkpoint_after(train_dir, newest, proc)
                if kill == 0:
                    _second_trainer_is_refused(train_dir, data_dir, proc.pid)
                time.sleep(rng.uniform(0.0, 1.5))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        if kill:
            assert f"(step {newest})" in (tmp_path / f"log{kill}.txt").read_text()
        z = np.load(preview_z_path(train_dir))
        if preview_z is not None:
            np.testing.assert_array_equal(z, preview_z)
        preview_z = z
        newest = _newest_complete_step(train_dir)
        resume_from, restored = _restored_state(train_dir, tmp_path / f"kill{kill}")
        assert checkpoints.checkpoint_number(resume_from) == newest
        expected = _tensors(resume_from)
        assert restored.keys() == expected.keys()
        for name, value in expected.items():
            np.testing.assert_array_equal(restored[name], value, err_msg=name)

    final = subprocess.run(
        [sys.executable, TRAIN_PY, f"--train_dir={train_dir}", f"--train_steps={newest + 2}"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert f"ckpt-{newest} (step {newest})" in final.stderr
    assert "Taking over the lock" in final.stderr  # the killed trainer's lock was stale
    np.testing.assert_array_equal(np.load(preview_z_path(train_dir)), preview_z)
    last = _tensors(checkpoints.latest_checkpoint(train_dir))
    assert int(last["step/.ATTRIBUTES/VARIABLE_VALUE"]) == newest + 2
    assert int(last["g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]) == newest + 2
    assert not os.path.exists(os.path.join(train_dir, locks.LOCK_FILENAME))
    assert not glob.glob(os.path.join(train_dir, "**", ".*.tmp-*"), recursive=True)
    assert not glob.glob(os.path.join(checkpoints.checkpoint_dir(train_dir), "*_temp"))


def _second_trainer_is_refused(train_dir, data_dir, pid):
    started = time.time()
    second = subprocess.run(
        [sys.executable, TRAIN_PY, *TINY_FLAGS, f"--data_dir={data_dir}",
         f"--train_dir={train_dir}", "--train_steps=100000"],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 1, second.stderr
    assert "is in use" in second.stderr and f"process {pid} on host" in second.stderr
    assert socket.gethostname() in second.stderr and "started 20" in second.stderr
    assert "Traceback" not in second.stderr
    assert time.time() - started < 60


EXPORT_SCRIPT = """
import sys
from wavegan_tf.serving import export
print("exporting", flush=True)
export.export_generator(sys.argv[1])
"""


def test_sigkill_while_exporting_leaves_a_whole_export_and_the_next_export_recovers(
        run_copy, tmp_path):
    rng = random.Random(7)
    started = time.time()
    export_dir = export.export_generator(run_copy)
    duration = time.time() - started
    before = snapshot(export_dir)
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", EXPORT_SCRIPT, run_copy], cwd=ROOT,
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout.readline().strip() == b"exporting"
        time.sleep(rng.uniform(0.0, 1.5 * duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if not os.path.exists(export_dir):  # killed between the two renames
            assert atomic_files.recover_interrupted_replace(export_dir)
        assert snapshot(export_dir).keys() == before.keys()
        loading.load_model_for_generation(export_dir)
    assert export.export_generator(run_copy) == export_dir
    assert [n for n in os.listdir(run_copy) if n.startswith(".export")] == []
    assert loading.load_model_for_generation(export_dir).step == 3


def test_export_put_aside_by_an_interrupted_replacement_is_restored(run_copy):
    export_dir = export.export_generator(run_copy)
    before = snapshot(export_dir)
    aside = atomic_files.temp_path_beside(export_dir, kind="old")
    os.rename(export_dir, aside)  # the state between the two renames of a replacement
    half = atomic_files.temp_path_beside(export_dir)
    os.mkdir(half)
    assert atomic_files.recover_interrupted_replace(export_dir)
    assert snapshot(export_dir) == before
    assert not os.path.exists(aside) and not os.path.exists(half)
    os.rename(export_dir, aside)
    export.export_generator(run_copy)  # the next export repairs first, then replaces
    assert loading.load_model_for_generation(export_dir).step == 3
    assert [n for n in os.listdir(run_copy) if n.startswith(".export")] == []


# -- the run lock ------------------------------------------------------------------------------

def test_lock_records_this_process_and_is_removed_on_exit(tmp_path):
    with locks.RunLock(str(tmp_path)) as lock:
        record = json.loads((tmp_path / ".lock").read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["started"][:2] == "20"
        assert not lock.took_over
    assert not (tmp_path / ".lock").exists()


def test_held_lock_refuses_a_second_owner_naming_pid_host_and_start(tmp_path):
    with locks.RunLock(str(tmp_path)):
        started = json.loads((tmp_path / ".lock").read_text())["started"]
        with pytest.raises(locks.TrainDirInUse) as err:
            locks.RunLock(str(tmp_path)).acquire()
    message = str(err.value)
    assert f"process {os.getpid()} on host {socket.gethostname()} (started {started})" in message
    assert str(tmp_path / ".lock") in message


def _dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _write_lock(directory, **record):
    (directory / ".lock").write_text(json.dumps(record))


def test_stale_lock_of_a_dead_process_is_taken_over_by_train(run_copy, caplog):
    pid = _dead_pid()
    _write_lock(pathlib.Path(run_copy), pid=pid, host=socket.gethostname(),
                started="2026-01-01T00:00:00+00:00")
    with caplog.at_level(logging.WARNING):
        result = runs.train(run_copy, {}, dict(train_steps=4), verbose=0)
    assert result.step == 4
    assert any("Taking over the lock" in r.getMessage() and f"process {pid}" in r.getMessage()
               for r in caplog.records)
    assert not os.path.exists(os.path.join(run_copy, locks.LOCK_FILENAME))


@pytest.mark.parametrize("record, reason", [
    (dict(pid=1, host=socket.gethostname()), "is still running"),
    (dict(pid=_dead_pid(), host="another-host.example"), "ran on another host"),
])
def test_unverifiable_lock_without_flock_is_refused(tmp_path, record, reason):
    _write_lock(tmp_path, started="2026-01-01T00:00:00+00:00", **record)
    with pytest.raises(locks.TrainDirInUse, match=reason):
        locks.RunLock(str(tmp_path)).acquire()


def test_empty_lock_file_left_by_a_crash_is_taken_over(tmp_path):
    (tmp_path / ".lock").write_text("")
    with locks.RunLock(str(tmp_path)) as lock:
        assert lock.took_over
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


# -- damaged checkpoints -----------------------------------------------------------------------

def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(run_copy, caplog):
    _truncate(_data_file(run_copy, 3))
    corrupt = os.path.join(checkpoints.checkpoint_dir(run_copy), "ckpt-3")
    with caplog.at_level(logging.WARNING):
        result = runs.train(run_copy, {}, dict(train_steps=4), verbose=0)
    assert (result.start_step, result.step) == (2, 4)
    warnings = " ".join(r.getMessage() for r in caplog.records)
    assert f"checkpoint {corrupt!r} is corrupt or incomplete" in warnings
    assert "ckpt-2" in warnings
    moved = os.path.join(checkpoints.checkpoint_dir(run_copy), "corrupt")
    assert sorted(os.listdir(moved)) == ["ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert checkpoints.usable_checkpoint(run_copy) == (checkpoints.latest_checkpoint(run_copy),
                                                       [])


def test_generation_skips_a_damaged_newest_checkpoint(run_copy):
    _truncate(_data_file(run_copy, 3))
    assert loading.load_model_for_generation(run_copy).step == 2


def test_only_damaged_checkpoints_are_an_error_naming_each_path(run_copy):
    for step in (1, 2, 3):
        _truncate(_data_file(run_copy, step))
    prefixes = [os.path.join(checkpoints.checkpoint_dir(run_copy), f"ckpt-{s}") for s in (3, 2, 1)]
    for action in (lambda: runs.train(run_copy, {}, dict(train_steps=4), verbose=0),
                   lambda: export.export_generator(run_copy)):
        with pytest.raises(checkpoints.CorruptCheckpointError) as err:
            action()
        assert list(err.value.paths) == prefixes
        assert all(repr(p) in str(err.value) for p in prefixes)
    assert len(glob.glob(os.path.join(checkpoints.checkpoint_dir(run_copy), "*.index"))) == 3
    cli = subprocess.run([sys.executable, GENERATE_PY, f"--model={run_copy}",
                          f"--out_dir={run_copy}/out"], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    assert f"error: no usable checkpoint in {checkpoints.checkpoint_dir(run_copy)!r}" in \
        cli.stderr
    assert repr(prefixes[0]) in cli.stderr


def test_lost_state_file_and_save_leftovers_do_not_restart_the_run(run_copy):
    directory = checkpoints.checkpoint_dir(run_copy)
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckp')  # cut short
    os.mkdir(os.path.join(directory, "ckpt-4_temp"))
    orphan = os.path.join(directory, "ckpt-9.data-00000-of-00001")
    shutil.copy(_data_file(run_copy, 3), orphan)
    assert checkpoints.prepare_resume(run_copy).endswith("ckpt-3")
    assert checkpoints.latest_checkpoint(run_copy).endswith("ckpt-3")
    assert not os.path.exists(orphan)
    assert not os.path.exists(os.path.join(directory, "ckpt-4_temp"))
    result = runs.train(run_copy, {}, dict(train_steps=4, keep_checkpoints=2), verbose=0)
    assert result.start_step == 3
    names = sorted(os.path.basename(p) for p in checkpoints.list_checkpoints(run_copy))
    assert names == ["ckpt-3", "ckpt-4"]  # the rewritten state lets the manager prune


def test_damaged_export_is_an_error_naming_the_path(run_copy):
    export_dir = export.export_generator(run_copy)
    _truncate(os.path.join(export_dir, "variables", "variables.data-00000-of-00001"))
    with pytest.raises(ValueError, match=f"export {export_dir!r} cannot be loaded: it is "
                                         "corrupt or incomplete"):
        loading.load_model_for_generation(export_dir)


# -- saves that fail ---------------------------------------------------------------------------

def test_simulated_disk_full_on_save_stops_training_keeping_the_last_checkpoint(
        run_copy, monkeypatch):
    real_save = tf.train.CheckpointManager.save

    def save(manager, checkpoint_number=None, **kwargs):
        if checkpoint_number == 5:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(manager, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    with pytest.raises(checkpoints.CheckpointSaveError) as err:
        runs.train(run_copy, {}, dict(train_steps=10), verbose=0)
    message = str(err.value)
    assert "cannot save the checkpoint of step 5" in message
    assert "No space left on device" in message and "step 4" in message
    assert checkpoints.usable_checkpoint(run_copy)[0].endswith("ckpt-4")
    assert not os.path.exists(os.path.join(run_copy, locks.LOCK_FILENAME))


def test_save_blocked_by_a_file_in_the_way_stops_training_with_a_clear_error(
        run_copy, monkeypatch):
    # Once the run has started, a file appears where TF's save of step 4 creates its
    # temporary folder: a real failure of the real save (running as root, permissions alone
    # cannot make the folder unwritable).
    blocker = os.path.join(checkpoints.checkpoint_dir(run_copy), "ckpt-4_temp")
    prepare_resume = checkpoints.prepare_resume

    def prepare_then_block(train_dir):
        prefix = prepare_resume(train_dir)
        with open(blocker, "w") as f:
            f.write("not a folder")
        return prefix

    monkeypatch.setattr(checkpoints, "prepare_resume", prepare_then_block)
    with pytest.raises(checkpoints.CheckpointSaveError, match="step 4 in .*Training stopped; "
                       "the newest complete checkpoint is step 3"):
        runs.train(run_copy, {}, dict(train_steps=5), verbose=0)
    assert checkpoints.usable_checkpoint(run_copy)[0].endswith("ckpt-3")
    assert not os.path.exists(blocker)
    assert loading.load_model_for_generation(run_copy).step == 3


def test_unwritable_previews_folder_stops_training_with_a_clear_error(run_copy):
    shutil.rmtree(os.path.join(run_copy, "previews"))
    with open(os.path.join(run_copy, "previews"), "w") as f:
        f.write("a file where the previews folder belongs")
    with pytest.raises(checkpoints.CheckpointSaveError, match="cannot write the preview of "
                       "step 4 in .*the newest checkpoint is step 3"):
        runs.train(run_copy, {}, dict(train_steps=5, preview_every_steps=1), verbose=0)
