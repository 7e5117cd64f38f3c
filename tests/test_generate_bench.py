"""bench/generate.py: every export timed on the same z, LiteRT at each batch size."""

from support import run_bench


def _values(stdout):
    return dict(pair.split("=", 1) for pair in stdout.strip().splitlines()[-1].split())


def test_litert_rows_per_batch_size_beside_the_savedmodel():
    result = run_bench("generate.py", "--model_dim", "2", "--batch_size", "4", "--batches", "1",
                       "--precisions", "float32", "--convs", "auto",
                       "--tflite_weights", "float32", "--tflite_batches", "1,4")
    assert result.returncode == 0, result.stderr
    rows = [line.split()[2] for line in result.stdout.splitlines() if line.startswith("d=2 ")]
    assert rows == ["savedmodel_float32", "tflite_float32", "tflite_float32_b4"]
    values = _values(result.stdout)
    for name in rows:
        assert float(values[f"rtf_{name}"]) > 0
    # The same G on the same z: LiteRT float32 gives the SavedModel's audio, at either batch.
    assert float(values["max_abs_err_tflite_float32"]) < 1e-4
    assert float(values["max_abs_err_tflite_float32_b4"]) < 1e-4


def test_a_bad_litert_batch_is_refused_naming_the_flag():
    result = run_bench("generate.py", "--tflite_batches", "1,0")
    assert result.returncode != 0
    assert "--tflite_batches takes whole numbers >= 1, got 1,0" in result.stderr
