"""bench/accelerator_check.sh on a machine without a GPU or TPU: says so and succeeds."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "accelerator_check.sh")


def test_without_an_accelerator_it_says_so_and_exits_0(tmp_path):
    # No GPU is visible to TensorFlow with CUDA_VISIBLE_DEVICES empty, even on a GPU machine.
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines() == [
        "no accelerator found: TensorFlow sees no GPU or TPU on this machine, nothing to "
        "measure"]

