"""Chaos drill: SIGKILL the programs at random moments, again and again, and count what breaks.

Real ``train.py``, ``generate.py`` (WAVs and a PNG sheet), ``generate.py --web`` and
``evaluate.py score`` runs at a tiny size share one training directory, one output folder, one
site and one report. Each cycle starts one of them and kills it with SIGKILL: at a moment drawn
uniformly over its usual running time, or (``--concentrated`` of the kills) while it writes a
checkpoint, a preview, the export, a WAV, the sheet, the site or the report (the moment its
temporary file or folder appears, plus up to 20 ms). The next run of the same program is its
resume. After every cycle the drill checks, and counts:

* ``lost_checkpoints``: a checkpoint the trainer reported saved ("Saved checkpoint ... (step
  N)") that no longer restores, with no newer one that does;
* ``step_regressions``: a resumed trainer that starts before the newest reported save (so more
  than one save interval, ``--save_every_steps`` 2, behind the step it had reached);
* ``corrupt_files``: a config, options, preview, WAV, PNG, report or site file where a user
  reads it that does not parse whole, or a listed checkpoint that does not read back;
* ``bad_exports`` / ``missing_exports``: ``RUN/export`` does not load and generate in plain
  TensorFlow (``tf.saved_model.load`` in a separate process that never imports wavegan_tf), or
  is missing once there was one;
* ``lock_blocks``: a trainer refused by the lock of a killed one;
* ``failed_resumes`` / ``failed_runs``: a run that was not killed but failed (after a kill of
  the same program / otherwise);
* ``leftovers``: temporary files and folders of killed writers still there after the final runs
  (informational: the next writer of the same file removes them).

The programs are started by a launcher process that has imported TensorFlow and the package
once and forks a child per run, which runs the program's script as ``__main__`` (runpy) with
its stdout and stderr in a log file: a real process of the real program, started in well
under a second instead of the ten seconds an import of TensorFlow takes here. At the end every
program runs once more unkilled. The last line holds ``name=value`` pairs::

    kills=20 lost_checkpoints=0 corrupt_files=0 failed_resumes=0 step_regressions=0 ...

    python bench/chaos.py --kills 20 --seed 0        # about two minutes on 2 cores
    python bench/chaos.py --kills 300 --work_dir /tmp/chaos --keep
"""

import collections
import glob
import json
import os
import random
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_PY = os.path.join(ROOT, "train.py")
GENERATE_PY = os.path.join(ROOT, "generate.py")
EVALUATE_PY = os.path.join(ROOT, "evaluate.py")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
TINY = ["--model_dim=2", "--batch_size=2", "--n_critic=1", "--latent_dim=8", "--kernel_len=5"]
SAVE_EVERY = 2
SLICE_LEN = 16384
CLIPS = 6
# Share of the kills per program, and the events a concentrated kill waits for in each.
WEIGHTS = {"train": 0.4, "generate": 0.25, "web": 0.15, "evaluate": 0.2}
EVENTS = {"train": ("checkpoint", "preview", "export"), "generate": ("wav", "png"),
          "web": ("site",), "evaluate": ("report",)}
# The usual running time of each program (seconds), before any is measured.
FIRST_GUESS = {"train": 8.0, "generate": 2.0, "web": 2.0, "evaluate": 4.0}
COUNTERS = ("lost_checkpoints", "corrupt_files", "failed_resumes", "step_regressions",
            "lock_blocks", "bad_exports", "missing_exports", "failed_runs", "leftovers")


# -- the launcher ---------------------------------------------------------------------------------

def launcher_main():
    """Imports TensorFlow and the package, then forks a child per request read from stdin
    (one JSON object ``{"script", "argv", "log"}`` a line), answering ``pid N``, and reports
    every child that ends as ``exit PID STATUS`` (a negative status: killed by that signal).
    It never runs TensorFlow itself, so that its children start from a clean state."""
    sys.path.insert(0, ROOT)
    import runpy

    import matplotlib
    matplotlib.use("Agg")
    import tensorflow  # noqa: F401
    import wavegan_tf.audio.plots  # noqa: F401  (librosa, whose import takes seconds)
    import wavegan_tf.eval.scoring  # noqa: F401
    import wavegan_tf.runs  # noqa: F401
    import wavegan_tf.serving.loading  # noqa: F401
    import wavegan_tf.serving.web_export  # noqa: F401

    out = sys.stdout
    out.write("ready\n")
    out.flush()
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for _ in selector.select(timeout=0.005):
            line = sys.stdin.readline()
            if not line:
                return
            request = json.loads(line)
            pid = os.fork()
            if pid == 0:
                _run_child(runpy, request)
            out.write(f"pid {pid}\n")
            out.flush()
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            out.write(f"exit {pid} {code}\n")
            out.flush()


def _run_child(runpy, request):
    """In the forked child: the program's script as ``__main__``, its output in the log."""
    code = 1
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.chdir(ROOT)
        sys.argv = [request["script"], *request["argv"]]
        try:
            runpy.run_path(request["script"], run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:  # noqa: BLE001 -- reported in the log, the child exits 1
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class Launcher:
    """The launcher process, seen from the drill."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--launcher"],
                                     cwd=ROOT, env=ENV, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the launcher did not start")
        self.exits = {}
        self.pids = collections.deque()
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            kind, *values = line.split()
            with self.changed:
                if kind == "pid":
                    self.pids.append(int(values[0]))
                else:
                    self.exits[int(values[0])] = int(values[1])
                self.changed.notify_all()

    def start(self, script, argv, log):
        with self.changed:
            self.proc.stdin.write(json.dumps({"script": script, "argv": argv, "log": log}) + "\n")
            self.proc.stdin.flush()
            self.changed.wait_for(lambda: self.pids, timeout=30)
            return self.pids.popleft()

    def exit_code(self, pid, timeout=None):
        """The child's exit status once it ended (None if still running after ``timeout``)."""
        with self.changed:
            self.changed.wait_for(lambda: pid in self.exits, timeout=timeout)
            return self.exits.pop(pid, None)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- the plain TensorFlow checker of exports ------------------------------------------------------

# Reads export folders from stdin; for each, loads it with plain TensorFlow and generates two
# clips through its serving signature; answers "ok" or "fail <reason>".
PLAIN_TF_CHECKER = r"""
import sys
import numpy as np
import tensorflow as tf
print("ready", flush=True)
for line in sys.stdin:
    path = line.strip()
    try:
        model = tf.saved_model.load(path)
        serve = model.signatures["serving_default"]
        name, spec = next(iter(serve.structured_input_signature[1].items()))
        z = np.random.default_rng(0).uniform(-1, 1, (2, spec.shape[-1])).astype(np.float32)
        audio = next(iter(serve(**{name: tf.constant(z)}).values())).numpy()
        assert audio.shape[0] == 2 and np.all(np.isfinite(audio)), audio.shape
        print("ok", flush=True)
    except Exception as err:
        print("fail " + " ".join(f"{type(err).__name__}: {err}".split())[:300], flush=True)
"""


class PlainTF:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", PLAIN_TF_CHECKER], env=ENV,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the plain TensorFlow checker did not start")

    def check(self, path):
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- the drill ---------------------------------------------------------------------------------------

class Drill:
    def __init__(self, work_dir, seed, concentrated, verbose):
        self.work = work_dir
        self.rng = random.Random(seed)
        self.concentrated = concentrated
        self.verbose = verbose
        self.run = os.path.join(work_dir, "run")
        self.out = os.path.join(work_dir, "clips")
        self.sheet = os.path.join(self.out, "sheet.png")
        self.site = os.path.join(work_dir, "site")
        self.report = os.path.join(work_dir, "report.json")
        self.logs = os.path.join(work_dir, "logs")
        self.counts = collections.Counter()
        self.kills = collections.Counter()
        self.durations = dict(FIRST_GUESS)
        self.pending_resume = set()
        self.max_reported = 0
        self.step = 0
        self.runs = 0
        self.export_seen = None
        self.problems = []
        self.flagged = set()

    # setup ---------------------------------------------------------------------------------
    def prepare(self):
        sys.path.insert(0, ROOT)
        from wavegan_tf.audio.demo_data import ensure_demo_dataset

        os.makedirs(self.logs, exist_ok=True)
        self.data = ensure_demo_dataset(os.path.join(self.work, "drums"), num_clips=8)
        self.tones = _write_tones(os.path.join(self.work, "tones"))
        self.classifier = _tiny_classifier(os.path.join(self.work, "classifier.keras"))
        self.launcher = Launcher()
        self.plain_tf = PlainTF()
        # The first run, unkilled: the run, its first checkpoints and its export.
        self.cycle("train", kill=False)

    # one run ---------------------------------------------------------------------------------
    def command(self, kind):
        seed = str(self.rng.randrange(1000))
        if kind == "train":
            self.target = self.step + self.rng.randint(3, 8)
            return TRAIN_PY, [*TINY, f"--data_dir={self.data}", f"--train_dir={self.run}",
                              f"--train_steps={self.target}", f"--save_every_steps={SAVE_EVERY}",
                              "--preview_every_steps=2", "--keep_checkpoints=3"]
        if kind == "generate":
            return GENERATE_PY, [f"--model={self.run}", f"--out_dir={self.out}", f"--n={CLIPS}",
                                 f"--seed={seed}", f"--plot={self.sheet}", "--overwrite"]
        if kind == "web":
            return GENERATE_PY, [f"--model={self.run}", f"--web={self.site}", f"--seed={seed}",
                                 "--overwrite"]
        model = os.path.join(self.run, "export")
        return EVALUATE_PY, ["score", f"--classifier={self.classifier}",
                             f"--generated={model if os.path.isdir(model) else self.run}",
                             f"--reference={self.tones}", "--n=10", "--splits=2",
                             "--ndb_bins=2", f"--json={self.report}", f"--seed={seed}"]

    def event_files(self, event):
        """The temporary files and folders of writes of ``event`` (the writes under way, and
        what killed writers left)."""
        patterns = {
            "checkpoint": [os.path.join(self.run, "checkpoints", "ckpt-*_temp*")],
            "preview": [os.path.join(self.run, "previews", ".*.tmp-*")],
            "export": [os.path.join(self.run, ".export.tmp-*")],
            "wav": [os.path.join(self.out, ".wavegan_*.tmp-*")],
            "png": [os.path.join(self.out, ".sheet.png.tmp-*")],
            "site": [os.path.join(self.work, ".site.tmp-*")],
            "report": [os.path.join(self.work, ".report.json.tmp-*")],
        }[event]
        return {path for pattern in patterns for path in glob.glob(pattern)}

    def cycle(self, kind, kill=True):
        """Runs ``kind`` once, killing it when ``kill``; returns whether it was killed."""
        script, argv = self.command(kind)
        self.runs += 1
        log = os.path.join(self.logs, f"{self.runs:04d}-{kind}.log")
        mode = None
        if kill:
            mode = "concentrated" if self.rng.random() < self.concentrated else "uniform"
            event = self.rng.choice(EVENTS[kind])
            delay = self.rng.uniform(0, self.durations[kind])
            left_before = self.event_files(event)  # a write starting is a new one
        before_reported = self.max_reported
        started = time.time()
        pid = self.launcher.start(script, argv, log)
        killed, code = False, None
        while code is None:
            code = self.launcher.exit_code(pid, timeout=0.0005 if kill else 0.05)
            if code is not None or not kill:
                if time.time() - started > 600:
                    raise RuntimeError(f"{kind} run {log} did not end in 10 minutes")
                continue
            elapsed = time.time() - started
            if (mode == "uniform" and elapsed >= delay) or (
                    mode == "concentrated" and self.event_files(event) - left_before):
                if mode == "concentrated":
                    time.sleep(self.rng.uniform(0, 0.02))
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed = True
                except ProcessLookupError:
                    pass
                code = self.launcher.exit_code(pid, timeout=60)
            elif elapsed > 4 * self.durations[kind] + 30:
                mode = "uniform"  # the event never came: kill now
                delay = 0
        killed = killed and code == -signal.SIGKILL
        if self.verbose:
            print(f"  {kind:8s} {mode or 'whole':12s} {'killed' if killed else f'exit {code}':8s}"
                  f" after {time.time() - started:5.1f} s", flush=True)
        if not killed:
            self.durations[kind] = 0.7 * self.durations[kind] + 0.3 * (time.time() - started)
        self.check_run(kind, log, code, killed, before_reported)
        self.check_files()
        if killed:
            self.kills[f"{kind}:{mode}"] += 1
            self.pending_resume.add(kind)
        elif code == 0:
            self.pending_resume.discard(kind)
        return killed

    # checks ----------------------------------------------------------------------------------
    def problem(self, counter, text, key=None):
        """Counts a problem once per ``key`` (e.g. a damaged file seen again later)."""
        if key is not None:
            if key in self.flagged:
                return
            self.flagged.add(key)
        self.counts[counter] += 1
        self.problems.append(f"{counter}: {text}")
        if self.verbose:
            print(f"  !! {counter}: {text}", flush=True)

    def check_run(self, kind, log, code, killed, before_reported):
        try:
            with open(log, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:  # killed before it opened its log
            text = ""
        if not killed and code != 0:
            counter = "failed_resumes" if kind in self.pending_resume else "failed_runs"
            tail = " | ".join(text.strip().splitlines()[-3:])
            self.problem(counter, f"{kind} exited {code} ({log}): {tail}")
        if kind != "train":
            return
        if "is in use" in text:
            self.problem("lock_blocks", f"{log}")
        reported = [int(m) for m in re.findall(r"Saved checkpoint \S+ \(step (\d+)\)", text)]
        resumed = re.search(r"Resuming from \S+ \(step (\d+)\)", text)
        if resumed and int(resumed.group(1)) < before_reported:
            self.problem("step_regressions", f"resumed at step {resumed.group(1)} after a "
                                             f"reported save of step {before_reported} ({log})")
        if not resumed and before_reported and ("Training directory" in text):
            self.problem("step_regressions", f"started over although step {before_reported} "
                                             f"was saved ({log})")
        self.max_reported = max([self.max_reported, *reported])
        self.check_checkpoints(log)

    def check_checkpoints(self, log):
        from wavegan_tf.training import checkpoints

        listed = checkpoints.list_checkpoints(self.run)
        newest_good = None
        for prefix in listed:
            try:
                checkpoints.verify_checkpoint(prefix)
            except checkpoints.CorruptCheckpointError as err:
                self.problem("corrupt_files", f"listed checkpoint does not read back: {err}",
                             key=prefix)
                continue
            newest_good = newest_good or checkpoints.checkpoint_number(prefix)
        if (newest_good or 0) < self.max_reported:
            self.problem("lost_checkpoints", f"step {self.max_reported} was reported saved; "
                                             f"the newest that restores is {newest_good} ({log})")
        self.step = max(self.step, newest_good or 0)

    def check_files(self):
        """Every file where a user reads it parses whole; the export loads in plain TF."""
        import numpy as np
        import soundfile as sf

        for path in (os.path.join(self.run, "config.json"),
                     os.path.join(self.run, "training.json"), self.report,
                     os.path.join(self.site, "manifest.json")):
            if os.path.exists(path):
                try:
                    with open(path, encoding="utf-8") as f:
                        json.load(f)
                except (OSError, ValueError) as err:
                    self.problem("corrupt_files", f"{path}: {err}", key=path)
        npy = os.path.join(self.run, "preview_z.npy")
        if os.path.exists(npy):
            try:
                np.load(npy)
            except (OSError, ValueError) as err:
                self.problem("corrupt_files", f"{npy}: {err}", key=npy)
        from wavegan_tf.audio import audio_files

        for path in (glob.glob(os.path.join(self.run, "previews", "*.wav"))
                     + glob.glob(os.path.join(self.out, "*.wav"))):
            try:  # whole: the header's data length is all there, and it decodes
                audio = audio_files.decode_audio_file(path, 16000, 1)
                if path.startswith(self.out) and len(audio) != SLICE_LEN:
                    raise ValueError(f"{len(audio)} frames, not {SLICE_LEN}")
            except Exception as err:  # noqa: BLE001 -- any failure to read is damage
                self.problem("corrupt_files", f"{path}: {err}", key=path)
        if os.path.exists(self.sheet):
            problem = _png_problem(self.sheet)
            if problem:
                self.problem("corrupt_files", f"{self.sheet}: {problem}",
                             key=(self.sheet, os.path.getmtime(self.sheet)))
        if os.path.isdir(self.site) and os.listdir(self.site):
            problem = _site_problem(self.site)
            if problem:
                self.problem("corrupt_files", f"{self.site}: {problem}",
                             key=(self.site, os.stat(self.site).st_ino))
        self.check_export()

    def check_export(self):
        export = os.path.join(self.run, "export")
        if not os.path.isdir(export):
            if self.export_seen is not None:
                self.problem("missing_exports", f"{export} is missing")
            return
        info = os.stat(os.path.join(export, "saved_model.pb"))
        ident = (info.st_ino, info.st_mtime_ns)
        if ident == self.export_seen:
            return
        answer = self.plain_tf.check(export)
        if answer != "ok":
            self.problem("bad_exports", f"{export}: {answer}")
        self.export_seen = ident

    def count_leftovers(self):
        found = [p for p in glob.glob(os.path.join(self.work, "**", ".*"), recursive=True)
                 if re.search(r"\.(tmp|old|building)-", os.path.basename(p))
                 or p.endswith(".lock")]
        for path in found:
            self.problem("leftovers", path)

    # the whole drill ---------------------------------------------------------------------------
    def drill(self, kills):
        kinds, weights = zip(*WEIGHTS.items())
        done = 0
        while done < kills:
            kind = self.rng.choices(kinds, weights)[0]
            if self.cycle(kind):
                done += 1
                if self.verbose:
                    print(f"kill {done}/{kills}: {kind} (step {self.step}, "
                          f"{sum(self.counts.values())} problems)", flush=True)
        for kind in ("train", "generate", "web", "evaluate"):  # every program once more, whole
            self.cycle(kind, kill=False)
        self.count_leftovers()
        return done

    def close(self):
        self.launcher.close()
        self.plain_tf.close()


def _png_problem(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "not a PNG"
    if not data.endswith(b"IEND\xaeB`\x82"):
        return "cut short (no IEND chunk)"
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
    except Exception as err:  # noqa: BLE001 -- any failure to decode is damage
        return str(err)
    return None


def _site_problem(site):
    try:
        with open(os.path.join(site, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        size = os.path.getsize(os.path.join(site, manifest["weights_file"]))
        end = max((w["offset"] + 4 * int(_product(w["shape"]))
                   for layer in manifest["layers"] for w in layer["weights"]), default=0)
        if end != size:
            return f"weights file holds {size} bytes, the manifest {end}"
        for name in ("index.html", "style.css", "drum_machine.js", "wavegan_runtime.js"):
            if not os.path.isfile(os.path.join(site, name)):
                return f"no {name}"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return str(err)
    return None


def _product(values):
    result = 1
    for value in values:
        result *= value
    return result


def _write_tones(folder):
    import numpy as np
    import soundfile as sf

    rate = 16000
    t = np.arange(rate // 2) / rate
    for i, name in enumerate(("low", "mid", "high")):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        for j in range(4):
            tone = 0.5 * np.sin(2 * np.pi * 200 * (i + 1) * (1 + j / 10) * t)
            sf.write(os.path.join(folder, name, f"{j}.wav"), tone.astype(np.float32), rate)
    return folder


def _tiny_classifier(path):
    import keras

    from wavegan_tf.eval import classifier as classifier_lib

    keras.utils.set_random_seed(1)
    model = classifier_lib.build_classifier(3, slice_len=SLICE_LEN, filters=4)
    classifier_lib.save_classifier(model, path, ["low", "mid", "high"])
    return path


def main(argv):
    del argv
    from absl import flags

    FLAGS = flags.FLAGS
    if FLAGS.kills < 1:
        raise app.UsageError(f"--kills must be >= 1, got {FLAGS.kills}")
    if not 0 <= FLAGS.concentrated <= 1:
        raise app.UsageError(f"--concentrated must be in [0, 1], got {FLAGS.concentrated}")
    started = time.time()
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="wavegan-chaos-")
    if os.path.exists(work) and os.listdir(work):
        raise app.UsageError(f"--work_dir {work!r} is not empty; give a new folder")
    os.makedirs(work, exist_ok=True)
    drill = Drill(work, FLAGS.seed, FLAGS.concentrated, FLAGS.verbose)
    try:
        drill.prepare()
        kills = drill.drill(FLAGS.kills)
    finally:
        drill.close()
    for problem in drill.problems:
        print(problem)
    print("kills by program and moment: " + ", ".join(
        f"{k}={v}" for k, v in sorted(drill.kills.items())))
    print(f"runs={drill.runs} final_step={drill.step} work_dir={work}"
          + ("" if FLAGS.keep or FLAGS.work_dir else " (deleted)"))
    if not (FLAGS.keep or FLAGS.work_dir):
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    print(f"kills={kills} " + " ".join(f"{name}={drill.counts[name]}" for name in COUNTERS)
          + f" seconds={time.time() - started:.0f}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--launcher"]:  # before any flag is defined: children define theirs
        launcher_main()
        sys.exit(0)
    from absl import app, flags

    sys.path.insert(0, ROOT)
    from wavegan_tf.cli import parse_flags  # noqa: E402  (--help exits 0)

    flags.DEFINE_integer("kills", 20, "SIGKILLs to deal (runs that end first do not count).")
    flags.DEFINE_integer("seed", 0, "Seed of the programs, moments and kinds of kill.")
    flags.DEFINE_float("concentrated", 0.6, "Share of the kills dealt while a file is written "
                       "(the rest at a uniformly drawn moment).")
    flags.DEFINE_string("work_dir", None, "A new folder for the run, clips, site and logs "
                        "(kept); default: a temporary folder, deleted afterwards.")
    flags.DEFINE_bool("keep", False, "Keep the temporary folder.")
    flags.DEFINE_bool("verbose", False, "Print each kill and each problem as it happens.")
    app.run(main, flags_parser=parse_flags)
