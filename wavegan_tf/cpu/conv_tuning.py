"""A convolution plan measured on this machine: each layer's products timed both ways, kept.

:func:`polyphase_conv.rule_plan` picks, per layer, which of a strided convolution's three
products (forward, input gradient, kernel gradient) run as matmuls, by thresholds per CPU kind
that were measured on a few machines; on others it can be several points of peak short. Tuning
replaces the rule by a measurement: :func:`tune` times each product of each layer shape with
TensorFlow's op and as matmuls, at the run's batch size and precision, and keeps the faster.

The timings are cached in a small JSON file (:func:`cache_path`) under a key of this machine
(the CPU model, the threads TensorFlow may use, TensorFlow's version and oneDNN's instruction-set
limit), so a shape is timed once per machine; a cache that cannot be read, is not a plan cache
or has malformed entries is ignored with a warning (and rewritten on the next tuning), and
entries of other machines are kept but never used. :func:`adopt` hands plans to
:mod:`polyphase_conv`, whose ``"tuned"`` formulation runs them (the rule for shapes without
one). Only CPU-only machines tune: GPUs and TPUs keep TensorFlow's convolutions.
"""

import collections
import json
import math
import os
import platform
import time

from absl import logging

from wavegan_tf.cpu import bfloat16_support, polyphase_conv
from wavegan_tf.files.atomic_files import atomic_output_file, lock_path_beside
from wavegan_tf.files.locks import exclusive_lock

CACHE_FORMAT = "wavegan_tf.conv_plans"
CACHE_VERSION = 1
CACHE_DIR_VARIABLE = "WAVEGAN_TF_CACHE_DIR"
CACHE_FILENAME = "conv_plans.json"
PRODUCTS = polyphase_conv.Plan._fields
# Timed calls per product and way after one warm-up call; fewer for calls slower than
# SLOW_CALL_SECONDS, where one call already averages out the noise of a busy machine.
REPEATS, SLOW_REPEATS, SLOW_CALL_SECONDS = 5, 2, 0.05

Shape = collections.namedtuple(
    "Shape", ["batch", "dtype", "steps", "in_channels", "out_channels", "kernel_len", "stride"])
Shape.__doc__ = """One convolution as tuned: ``batch`` clips of ``dtype`` (a name, e.g.
"float32"), a 'same' convolution from ``steps * stride`` samples x ``in_channels`` to ``steps``
x ``out_channels`` with ``kernel_len`` taps (forward-convolution terms: G's transposed layers
are the same shapes the other way)."""


def cache_path(environ=None):
    """The plan cache: ``$WAVEGAN_TF_CACHE_DIR/conv_plans.json``, else under
    ``$XDG_CACHE_HOME/wavegan_tf`` or ``~/.cache/wavegan_tf``."""
    environ = os.environ if environ is None else environ
    directory = environ.get(CACHE_DIR_VARIABLE)
    if not directory:
        base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        directory = os.path.join(base, "wavegan_tf")
    return os.path.join(directory, CACHE_FILENAME)


def machine_key():
    """What a plan depends on besides the shape: CPU model, threads, TensorFlow, ISA limit."""
    import tensorflow as tf

    threads = tf.config.threading.get_intra_op_parallelism_threads() or _usable_cores()
    limit = bfloat16_support.onednn_isa_limit()
    return (f"{_cpu_model()}|threads={threads}|tensorflow={tf.__version__}"
            f"|isa={limit[1] if limit else 'native'}")


def shape_key(shape):
    """The cache's name of a :class:`Shape`."""
    return (f"{shape.dtype} batch={shape.batch} {shape.steps * shape.stride}x{shape.in_channels}"
            f"->{shape.steps}x{shape.out_channels} kernel={shape.kernel_len} "
            f"stride={shape.stride}")


def model_shapes(models, batch):
    """The distinct :class:`Shape` s of the strided convolutions of the functional Keras
    ``models`` (G and D) that :mod:`polyphase_conv` plans, at ``batch`` clips."""
    shapes = []
    for layer in _layers(models):
        shape = polyphase_conv.planned_shape(layer, batch)
        if shape is not None and Shape(*shape) not in shapes:
            shapes.append(Shape(*shape))
    return shapes


def _layers(models):
    """Every layer of ``models``, those of nested models included."""
    for model in models:
        for layer in model.layers:
            yield layer
            if hasattr(layer, "layers"):
                yield from _layers([layer])


def tune(shapes, path=None, retune=False, log=logging.info):
    """Plans for ``shapes``: read from the cache at ``path`` (:func:`cache_path` by default)
    or, for shapes it lacks (all with ``retune``), timed now and added to it.

    Returns ``{shape: (plan, timings)}`` where ``timings[product]`` is ``(TensorFlow's op,
    matmuls)`` in seconds. Says through ``log`` how many shapes were timed and how long it took.
    An unwritable cache is warned about; the plans are still returned.
    """
    path = path or cache_path()
    machine = machine_key()
    cached = {} if retune else read_cache(path).get(machine, {})
    missing = [s for s in shapes if shape_key(s) not in cached]
    if missing:
        log(f"Tuning the convolution plan: timing {len(missing)} layer shape(s) of "
            f"{len(shapes)} on this machine ({machine}); once, then cached in {path}.")
        start = time.perf_counter()
        timed = {shape_key(s): time_products(s) for s in missing}
        log(f"Tuned {len(missing)} shape(s) in {time.perf_counter() - start:.1f} s.")
        _store(path, machine, timed)
        cached = {**cached, **timed}
    return {s: (plan_of(cached[shape_key(s)]), cached[shape_key(s)]) for s in shapes}


def adopt(plans):
    """Lets :mod:`polyphase_conv`'s "tuned" formulation run ``plans`` (from :func:`tune`)."""
    polyphase_conv.adopt_tuned_plans({tuple(s): plan for s, (plan, _) in plans.items()})


def plan_report(plans):
    """Lines of text for ``plans`` (from :func:`tune`): each shape's products with their two
    times and the choice, then the sum with TensorFlow's ops everywhere against the plan."""
    lines = []
    for shape, (plan, timings) in plans.items():
        for product in PRODUCTS:
            standard, matmul = timings[product]
            choice = "matmuls" if getattr(plan, product) else "TensorFlow"
            lines.append(f"{shape_key(shape)}  {product:<15}  TensorFlow "
                         f"{standard * 1e3:8.2f} ms  matmuls {matmul * 1e3:8.2f} ms  -> {choice}")
    tuned = sum(min(t) for _, timings in plans.values() for t in timings.values())
    standard = sum(t[0] for _, timings in plans.values() for t in timings.values())
    lines.append(f"sum of the {3 * len(plans)} products: TensorFlow everywhere "
                 f"{standard * 1e3:.1f} ms, tuned {tuned * 1e3:.1f} ms "
                 f"({standard / tuned:.2f}x)")
    return lines


def plan_of(timings):
    """The :class:`polyphase_conv.Plan` of a shape's timings: matmuls where they were faster."""
    return polyphase_conv.Plan(*(timings[p][1] < timings[p][0] for p in PRODUCTS))


def time_products(shape):
    """``{product: (seconds with TensorFlow's op, seconds as matmuls)}`` for ``shape``, each
    the best of a few calls after a warm-up, on random operands."""
    import tensorflow as tf

    pc, length = polyphase_conv, shape.steps * shape.stride
    dtype = tf.as_dtype(shape.dtype)
    x = tf.random.normal([shape.batch, length, shape.in_channels], dtype=dtype)
    w = tf.random.normal([shape.kernel_len, shape.in_channels, shape.out_channels], dtype=dtype)
    g = tf.random.normal([shape.batch, shape.steps, shape.out_channels], dtype=dtype)
    k, s = shape.kernel_len, shape.stride
    ways = {
        "forward": ((x, w), lambda a, b: pc.standard_conv1d(a, b, s),
                    lambda a, b: pc.conv1d(a, b, s)),
        "input_gradient": ((g, w), lambda a, b: pc.standard_input_gradient(a, b, length, s),
                           lambda a, b: pc.conv1d_input_gradient(a, b, length, s)),
        "kernel_gradient": ((x, g), lambda a, b: pc.standard_kernel_gradient(a, b, k, s),
                            lambda a, b: pc.conv1d_kernel_gradient(a, b, k, s)),
    }
    return {product: tuple(_best_seconds(tf.function(fn), operands) for fn in fns)
            for product, (operands, *fns) in ways.items()}


def read_cache(path):
    """``{machine key: {shape key: timings}}`` of the cache at ``path``; empty when there is
    none, and with a warning naming the file when it is unreadable or not a plan cache.
    Malformed entries are left out, with a warning."""
    try:
        with open(path, encoding="utf-8") as f:
            content = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return _ignored(path, f"it cannot be read as JSON ({err})")
    if not isinstance(content, dict) or content.get("format") != CACHE_FORMAT:
        return _ignored(path, f"it is not a convolution plan cache (no \"format\": "
                              f"\"{CACHE_FORMAT}\")")
    if content.get("version") != CACHE_VERSION or not isinstance(content.get("machines"), dict):
        return _ignored(path, f"it is of version {content.get('version')!r}, this program "
                              f"reads version {CACHE_VERSION}")
    machines, dropped = {}, 0
    for machine, entries in content["machines"].items():
        entries = entries if isinstance(entries, dict) else {}
        timings = {key: _timings(value) for key, value in entries.items()}
        good = {key: value for key, value in timings.items() if value is not None}
        dropped += len(entries) - len(good)
        machines[machine] = good
    if dropped:
        logging.warning("Ignoring %d malformed entries of the convolution plan cache %s; those "
                        "shapes are timed again.", dropped, path)
    return machines


def _ignored(path, reason):
    logging.warning("Ignoring the convolution plan cache %s: %s. The shapes are timed again "
                    "and the file rewritten.", path, reason)
    return {}


def _timings(value):
    """``value`` as ``{product: (seconds, seconds)}`` when it is one, else None."""
    if not isinstance(value, dict) or set(value) != set(PRODUCTS):
        return None
    pairs = {}
    for product in PRODUCTS:
        pair = value[product]
        if not (isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                and v > 0 for v in pair)):
            return None
        pairs[product] = tuple(float(v) for v in pair)
    return pairs


def _store(path, machine, timed):
    """Adds ``timed`` to the cache at ``path`` for ``machine``, keeping every other entry;
    writers take turns, and a file that cannot be written is warned about."""
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with exclusive_lock(lock_path_beside(path)):
            machines = read_cache(path)
            machines[machine] = {**machines.get(machine, {}), **timed}
            content = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "machines": {
                m: {k: {p: list(v[p]) for p in PRODUCTS} for k, v in sorted(entries.items())}
                for m, entries in sorted(machines.items())}}
            with atomic_output_file(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=1, allow_nan=False)
                f.write("\n")
    except OSError as err:
        logging.warning("Could not write the convolution plan cache %s (%s); the plan is used "
                        "for this run only (set %s to a writable folder to keep it).", path, err,
                        CACHE_DIR_VARIABLE)


def _best_seconds(fn, operands):
    """Seconds of the fastest timed call of ``fn(*operands)``, after one warm-up call (which
    traces it); fewer calls for slow ones. On a CPU the call returns once its ops have run."""
    fn(*operands)
    times = [_seconds(fn, operands)]
    repeats = SLOW_REPEATS if times[0] > SLOW_CALL_SECONDS else REPEATS
    times += [_seconds(fn, operands) for _ in range(repeats - 1)]
    return min(times)


def _seconds(fn, operands):
    start = time.perf_counter()
    fn(*operands)
    return time.perf_counter() - start


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpu_model():
    """The CPU's model name from /proc/cpuinfo, else what the platform module knows."""
    try:
        with open(bfloat16_support.CPUINFO_PATH, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
