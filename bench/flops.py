"""Analytic FLOP counts of WaveGAN's and SpecGAN's convolutions and dense layers, per example
and iteration, and the machine's measured fp32 matmul peak that the benchmarks compare them with.

A multiply-add counts as 2 FLOPs. Conv1D/Conv2D: 2 * positions_out * K * C_in * C_out;
Conv1DTranspose/Conv2DTranspose: 2 * positions_in * K * C_in * C_out (positions: the length, or
height x width; K: the kernel's taps); Dense: 2 * n_in * n_out. Element-wise ops (and SpecGAN's
STFT of the real batches) are not counted.

Training multipliers (in units of one forward pass): a backward pass for weights and inputs
costs 2, for inputs only 1. The gradient penalty costs 6 critic passes: the forward on x_hat (1),
the input gradient (1), and differentiating both of those with respect to the weights (4).

:func:`matmul_peak_gflops` measures the machine's fp32 matmul throughput, the yardstick the
benchmarks state their figures against.
"""

import math
import time

import keras

_TRANSPOSED = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose)
_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D)


def forward_flops(model):
    """FLOPs of one forward pass of ``model`` for a single example."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, _TRANSPOSED + _CONVOLUTIONS):
            over = layer.input if isinstance(layer, _TRANSPOSED) else layer.output
            positions = math.prod(over.shape[1:-1])
            total += (2 * positions * math.prod(layer.kernel_size) * layer.input.shape[-1]
                      * layer.filters)
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def iteration_flops(generator, discriminator, batch_size, n_critic=5, gradient_penalty=True):
    """FLOPs of one training iteration: ``n_critic`` critic steps and one generator step."""
    f_g, f_d = forward_flops(generator), forward_flops(discriminator)
    critic = f_g + 2 * f_d + 4 * f_d + (6 * f_d if gradient_penalty else 0)
    gen = 3 * f_g + 2 * f_d
    return batch_size * (n_critic * critic + gen)


def matmul_peak_gflops(n=2048, repeats=20):
    """Best observed fp32 matmul throughput of this machine in GFLOP/s.

    The products are chained (each depends on the last) so no two are the same expression and
    none can be merged or skipped by the graph optimiser.
    """
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n), maxval=1.0 / n)

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, b)
        return x

    chain(a)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 * repeats / best / 1e9
