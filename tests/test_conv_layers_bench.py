"""bench/conv_layers.py: each product of D's five convolutions timed both ways."""

import pytest
from support import run_bench


def test_every_product_of_every_layer_timed_both_ways_with_sums():
    result = run_bench("conv_layers.py", "--model_dim", "2", "--batch_size", "2",
                       "--slice_len", "1024")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if "->" in line]
    assert [row[0] for row in rows[::3]] == ["1024x1->256x2", "256x2->64x4", "64x4->16x8",
                                             "16x8->4x16", "4x16->1x32"]
    assert [row[1] for row in rows] == ["forward", "input_gradient", "kernel_gradient"] * 5
    values = dict(pair.split("=", 1) for pair in result.stdout.strip().splitlines()[-1].split())
    # The sums are those of the printed rows: TensorFlow's times, and the faster of the two.
    times = [(float(row[row.index("TensorFlow") + 1]), float(row[row.index("matmul") + 1]))
             for row in rows]
    assert float(values["standard_ms"]) == pytest.approx(sum(t for t, _ in times), abs=0.8)
    assert float(values["best_ms"]) == pytest.approx(sum(min(t) for t in times), abs=0.8)
    assert 0 < float(values["best_ms"]) <= float(values["rule_ms"])
    assert values["cpu_kind"] in ("avx512", "avx2", "none")
