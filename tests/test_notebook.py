"""examples/wavegan.ipynb runs top to bottom (on a tiny model) and is stored without outputs."""

import os

import nbformat
import numpy as np
from nbclient import NotebookClient

from wavegan_tf.audio.demo_data import ensure_demo_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "examples", "wavegan.ipynb")


def _read():
    with open(NOTEBOOK, encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


def test_notebook_is_stored_without_outputs():
    notebook = _read()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_trains_generates_plays_plots_and_interpolates(tmp_path):
    notebook = _read()
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    data_dir = ensure_demo_dataset(str(tmp_path / "drums"), num_clips=8)
    parameters[0].source = "\n".join([
        "MODEL = None", f"TRAIN_DIR = {str(tmp_path / 'run')!r}", f"DATA_DIR = {data_dir!r}",
        "MODEL_DIM = 2", "BATCH_SIZE = 2", "TRAIN_STEPS = 1",
        f"OUT_DIR = {str(tmp_path / 'pictures')!r}", "N_CLIPS = 2", "SEED = 0"])
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.path.join(ROOT, "examples")}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code"
               for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output.data["text/html"] for output in outputs
            if "text/html" in output.get("data", {})]
    # Two clips, then the interpolation as one track: each an <audio> player.
    assert sum("<audio" in block for block in html) == 3
    images = [output.data["image/png"] for output in outputs
              if "image/png" in output.get("data", {})]
    assert len(images) == 2
    assert sorted(os.listdir(tmp_path / "pictures")) == ["generated.png", "interpolation.png"]
    text = "".join(output.get("text", "") for output in outputs)
    assert "trained steps 0..1" in text and "audio (2, 16384, 1) float32" in text
    assert np.load(tmp_path / "run" / "preview_z.npy").shape == (8, 100)
