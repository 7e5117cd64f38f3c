"""bench/spectrogram_sheet.py: a labelled PNG of real and generated spectrograms."""

import os
import subprocess
import sys

import numpy as np
import tensorflow as tf

from support import make_loud_train_dir, run_bench
from wavegan_tf.audio.demo_data import ensure_demo_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _png(path):
    return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_sheet_has_a_row_per_source_and_a_label_margin(tmp_path):
    real = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=4)
    model = make_loud_train_dir(tmp_path / "tiny_run", sample_rate=16000)
    out = tmp_path / "sheet.png"
    proc = run_bench("spectrogram_sheet.py", f"--real={real}", f"--models={model}", "--n=2",
                     f"--out={out}", "--labels=real clips,tiny model step 7")
    assert proc.returncode == 0, proc.stderr
    figures = dict(part.split("=") for part in proc.stdout.strip().splitlines()[-1].split())
    assert figures["rows"] == "2" and figures["clips_per_row"] == "2"
    image = _png(out)
    height, width = int(figures["height"]), int(figures["width"])
    assert image.shape[0] == height and image.shape[1] == width + 300
    margin = image[:, :280, :3]
    assert np.any(margin < 128), "the label margin holds no text"
    cells = image[:, 300:, 0]
    assert cells.std() > 10, "the spectrogram cells are blank"


def test_wrong_label_count_is_refused_naming_the_flag(tmp_path):
    model = make_loud_train_dir(tmp_path / "tiny_run", sample_rate=16000)
    proc = run_bench("spectrogram_sheet.py", f"--models={model}", "--n=1",
                     f"--out={tmp_path / 'sheet.png'}", "--labels=a,b")
    assert proc.returncode != 0
    assert "--labels names 2 rows, the sheet has 1" in proc.stderr
    assert not (tmp_path / "sheet.png").exists()


def test_default_labels_name_the_model_folder_and_step(tmp_path):
    run = tmp_path / "my_run"
    run.mkdir()
    script = os.path.join(ROOT, "bench", "spectrogram_sheet.py")
    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('sheet', {script!r}); "
            "sheet = importlib.util.module_from_spec(spec); spec.loader.exec_module(sheet); "
            "print(sheet.default_label(sys.argv[1]))")

    def label():
        return subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True,
                              text=True, cwd=ROOT, check=True).stdout.strip().splitlines()[-1]

    assert label() == "my_run"
    (run / "training.json").write_text('{"step": 1200}')
    assert label() == "my_run, step 1200"
