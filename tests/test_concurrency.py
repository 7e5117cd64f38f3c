"""Concurrent use, each tried with real processes at a tiny size: two generate.py writing into
one --out_dir, generate.py reading a run while train.py saves checkpoints into it, two --web
builds into one folder, and evaluate.py scoring an export while a trainer replaces it. (Two
trainers building the demo data at once: tests/test_demo_data.py.)"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from support import make_loud_train_dir, run_generate_main, snapshot, tiny_classifier
from wavegan_tf.audio.demo_data import ensure_demo_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATE_PY = os.path.join(ROOT, "generate.py")
TRAIN_PY = os.path.join(ROOT, "train.py")
EVALUATE_PY = os.path.join(ROOT, "evaluate.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TINY_FLAGS = ["--model_dim=2", "--batch_size=2", "--n_critic=1", "--latent_dim=8",
              "--kernel_len=5"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_loud_train_dir(tmp_path_factory.mktemp("concurrency") / "run")


def _start(script, *flags, log=subprocess.PIPE):
    return subprocess.Popen([sys.executable, script, *flags], cwd=ROOT, env=ENV, stdout=log,
                            stderr=subprocess.PIPE if log == subprocess.PIPE else log,
                            text=True)


def _finish(procs, timeout=300):
    return [(proc.returncode, *proc.communicate(timeout=timeout)) for proc in procs]


def _clips(folder):
    return sorted(glob.glob(os.path.join(folder, "wavegan_*.wav")))


# -- two generate.py into one --out_dir ----------------------------------------------------------

@pytest.mark.parametrize("overwrite", [False, True], ids=["refuse", "overwrite"])
def test_two_generators_into_one_out_dir_write_whole_files_of_one_run_each(
        run_dir, tmp_path, overwrite):
    out = str(tmp_path / "out")
    n = 200
    flags = ["--overwrite"] if overwrite else []
    procs = [_start(GENERATE_PY, f"--model={run_dir}", f"--out_dir={out}", f"--n={n}",
                    f"--seed={seed}", *flags) for seed in (1, 2)]
    results = [(proc.wait(timeout=300), *proc.communicate()) for proc in procs]
    succeeded = [seed for seed, (code, _, _) in zip((1, 2), results) if code == 0]
    for code, _, err in results:
        assert code in (0, 1), err
        if code == 1:  # a clear refusal, nothing of its own written
            assert "Traceback" not in err and "already exist" in err, err
    assert succeeded if overwrite else len(succeeded) == 1, results
    files = _clips(out)
    assert len(files) == n  # none lost, none half-written (a temporary name is not a clip)
    assert [n for n in os.listdir(out) if n.startswith(".")] == []
    # Every file is whole and all come from one run: the same bytes as that seed alone writes.
    for seed in succeeded[-1:] if not overwrite else succeeded:
        expected = str(tmp_path / f"expected{seed}")
        assert run_generate_main(f"--model={run_dir}", f"--out_dir={expected}", f"--n={n}",
                                 f"--seed={seed}") == 0
        if snapshot(expected) == {os.path.basename(p): open(p, "rb").read() for p in files}:
            break
    else:
        pytest.fail(f"the {n} files in {out} are not the whole output of one run")


# -- generate.py --model RUN while train.py saves into RUN ----------------------------------------

def _load_repeatedly(path, seconds):
    """Loads ``path`` for generation again and again for ``seconds``, generating a clip each
    time; the steps loaded."""
    from wavegan_tf.serving.loading import load_model_for_generation

    deadline, steps = time.time() + seconds, []
    while time.time() < deadline:
        model = load_model_for_generation(path)
        assert model.generate(np.zeros((1, model.latent_dim), np.float32)).shape[0] == 1
        steps.append(model.step)
    return steps


def _start_trainer(train_dir, data_dir, log, *extra):
    return _start(TRAIN_PY, *TINY_FLAGS, f"--data_dir={data_dir}", f"--train_dir={train_dir}",
                  "--save_every_steps=1", "--preview_every_steps=0", "--keep_checkpoints=2",
                  "--noexport", *extra, log=log)


def _wait_for(condition, proc, timeout=180):
    deadline = time.time() + timeout
    while not condition():
        assert proc.poll() is None, "the trainer exited early"
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


def test_generate_reads_the_newest_complete_checkpoint_while_train_saves(tmp_path):
    from wavegan_tf.training import checkpoints

    data_dir = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=8)
    train_dir = str(tmp_path / "run")
    with open(tmp_path / "train.log", "w") as log:
        trainer = _start_trainer(train_dir, data_dir, log, "--train_steps=100000")
        try:
            _wait_for(lambda: len(checkpoints.list_checkpoints(train_dir)) >= 2, trainer)
            steps = _load_repeatedly(train_dir, seconds=6)
            cli = subprocess.run([sys.executable, GENERATE_PY, f"--model={train_dir}",
                                  f"--out_dir={tmp_path / 'clips'}", "--n=3"], cwd=ROOT,
                                 env=ENV, capture_output=True, text=True, timeout=300)
            assert trainer.poll() is None, "the trainer stopped while being read"
        finally:
            trainer.kill()
            trainer.wait()
    assert len(steps) >= 3 and steps == sorted(steps) and steps[0] >= 1, steps
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert len(_clips(str(tmp_path / "clips"))) == 3
    assert "corrupt" not in cli.stderr


# -- two --web builds into one folder -------------------------------------------------------------

def _page_loads(site):
    """The page's runtime loads the site (Node.js), as in tests/test_fuzz_inputs.py."""
    from test_fuzz_inputs import NODE, NODE_HARNESS

    if NODE is None:
        return True
    done = subprocess.run([NODE, "-e", NODE_HARNESS,
                           os.path.join(ROOT, "web", "page", "wavegan_runtime.js"), site],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip() == '{"ok":true}'


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "web", "node_modules")),
                    reason="the page's runtime is not installed (npm ci in web/)")
def test_two_web_builds_into_one_folder_leave_one_whole_site(run_dir, tmp_path):
    """Without --overwrite the second build refuses, even when both checked the folder before
    either wrote it (with --overwrite each replaces the site whole: atomic_output_dir)."""
    site = str(tmp_path / "site")
    overwrite = False
    flags = []
    procs = [_start(GENERATE_PY, f"--model={run_dir}", f"--web={site}", f"--seed={seed}",
                    *flags) for seed in (1, 2)]
    results = [(proc.wait(timeout=300), *proc.communicate()) for proc in procs]
    codes = [code for code, _, _ in results]
    for code, _, err in results:
        assert code in (0, 1), err
        if code == 1:
            assert "Traceback" not in err and "is not empty" in err, err
    assert codes == [0, 0] if overwrite else sorted(codes) == [0, 1], results
    with open(os.path.join(site, "manifest.json")) as f:
        manifest = json.load(f)
    winner = [seed for seed, code in zip((1, 2), codes) if code == 0]
    if not overwrite:  # the page of the run that succeeded, not the refused one
        from wavegan_tf.nets.latent import sample_z

        np.testing.assert_allclose(manifest["pads"]["pads"][0]["z"],
                                   sample_z(8, 8, winner[0])[0], rtol=1e-6)
    assert _page_loads(site)
    assert [n for n in os.listdir(tmp_path) if n.startswith(".site")] == []


# -- evaluate.py while a trainer exports ------------------------------------------------------------

EXPORT_LOOP = """
import sys, time
from wavegan_tf.serving import export
deadline, count = time.time() + float(sys.argv[2]), 0
print("exporting", flush=True)
while time.time() < deadline:
    export.export_generator(sys.argv[1])
    count += 1
print("exports", count, flush=True)
"""

def _tones(folder):
    rate = 16000
    t = np.arange(rate // 2) / rate
    for i, name in enumerate(("a", "b", "c")):
        os.makedirs(os.path.join(folder, name))
        for j in range(4):
            sf.write(os.path.join(folder, name, f"{j}.wav"),
                     (0.5 * np.sin(2 * np.pi * 200 * (i + 1) * (1 + j / 10) * t)).astype(
                         np.float32), rate)
    return str(folder)


def test_evaluate_scores_an_export_while_a_trainer_replaces_it(run_dir, tmp_path):
    from wavegan_tf.serving import export

    run = str(tmp_path / "run")
    shutil.copytree(run_dir, run)
    export_dir = export.export_generator(run)
    classifier = tiny_classifier(str(tmp_path))
    reference = _tones(tmp_path / "tones")
    exporter = subprocess.Popen([sys.executable, "-c", EXPORT_LOOP, run, "30"], cwd=ROOT,
                                env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        assert exporter.stdout.readline().strip() == "exporting"
        score = subprocess.Popen(
            [sys.executable, EVALUATE_PY, "score", f"--classifier={classifier}",
             f"--generated={export_dir}", f"--reference={reference}", "--n=20", "--splits=2",
             "--ndb_bins=2", f"--json={tmp_path / 'report.json'}"], cwd=ROOT, env=ENV,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        steps = _load_repeatedly(export_dir, seconds=15)
        score_err = score.communicate(timeout=300)[1]
        out, err = exporter.communicate(timeout=300)
    finally:
        exporter.kill()
        exporter.wait()
    assert exporter.returncode == 0, err[-3000:]
    assert int(out.split("exports")[1]) >= 2
    assert len(steps) >= 3 and set(steps) == {7}
    assert score.returncode == 0, score_err[-3000:]
    with open(tmp_path / "report.json") as f:
        assert "inception_score" in json.dumps(json.load(f))


def test_a_reader_waits_for_a_replacement_under_way_and_reads_the_new_folder(tmp_path):
    import threading

    from wavegan_tf.files import atomic_files, locks

    path = tmp_path / "export"
    path.mkdir()
    (path / "v").write_text("old")

    def read(folder):
        with open(os.path.join(folder, "v")) as f:  # FileNotFoundError between the renames
            return f.read()

    aside = threading.Event()

    def writer():  # held between its two renames for half a second
        with locks.exclusive_lock(atomic_files.lock_path_beside(str(path))):
            old = atomic_files.temp_path_beside(str(path), kind="old")
            os.rename(path, old)
            aside.set()
            time.sleep(0.5)
            new = tmp_path / "new"
            new.mkdir()
            (new / "v").write_text("new")
            os.rename(new, path)
            shutil.rmtree(old)

    thread = threading.Thread(target=writer)
    thread.start()
    aside.wait()
    assert atomic_files.read_replaceable_dir(str(path), read) == "new"
    thread.join()


def test_loading_an_export_a_killed_writer_left_aside_restores_it(run_dir, tmp_path):
    from wavegan_tf.files import atomic_files
    from wavegan_tf.serving import export
    from wavegan_tf.serving.loading import load_model_for_generation

    run = str(tmp_path / "run")
    shutil.copytree(run_dir, run)
    export_dir = export.export_generator(run)
    os.rename(export_dir, atomic_files.temp_path_beside(export_dir, kind="old"))  # killed here
    assert load_model_for_generation(export_dir).step == 7
    assert os.path.isdir(export_dir) and [n for n in os.listdir(run) if n.startswith(".")] == []


def test_a_replaced_folder_is_never_missing_for_a_reader(tmp_path):
    import threading

    from wavegan_tf.files import atomic_files

    path = str(tmp_path / "export")
    with atomic_files.atomic_output_dir(path) as tmp:
        open(os.path.join(tmp, "v"), "w").close()
    missing, stop = [], threading.Event()

    def watch():
        while not stop.is_set():
            if not os.path.isdir(path):
                missing.append(time.time())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for i in range(100):
            with atomic_files.atomic_output_dir(path) as tmp:
                with open(os.path.join(tmp, "v"), "w") as f:
                    f.write(str(i))
    finally:
        stop.set()
        watcher.join()
    assert missing == [] and open(os.path.join(path, "v")).read() == "99"
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_generate_removes_what_killed_writers_left_in_its_out_dir(run_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    for name in (".wavegan_0001.wav.tmp-1a2b", ".sheet.png.tmp-3c4d.png", "notes.txt"):
        (out / name).write_text("left by a killed writer")
    assert run_generate_main(f"--model={run_dir}", f"--out_dir={out}", "--n=2",
                             f"--plot={out / 'sheet.png'}") == 0
    assert sorted(os.listdir(out)) == ["notes.txt", "sheet.png", "wavegan_0000.wav",
                                       "wavegan_0001.wav"]


def test_a_report_writer_removes_what_killed_writers_of_the_report_left(tmp_path):
    from wavegan_tf.eval.scoring import write_report

    (tmp_path / ".report.json.tmp-1a2b.json").write_text('{"half": ')
    (tmp_path / ".other.json.tmp-3c4d.json").write_text("not ours")
    write_report({"score": 1}, str(tmp_path / "report.json"))
    assert sorted(os.listdir(tmp_path)) == [".other.json.tmp-3c4d.json", "report.json"]
    assert json.loads((tmp_path / "report.json").read_text()) == {"score": 1}
