"""A trained generator as a static web page: the WaveGAN drum machine, running G in the browser.

:func:`export_web` turns a training directory or an export into a self-contained folder that any
static web server can serve and that also opens from disk (double-click ``index.html``);
nothing is fetched from the internet when the page runs:

* ``index.html``, ``style.css``, ``drum_machine.js`` (the page) and ``wavegan_runtime.js`` (G's
  forward pass written with TensorFlow.js ops);
* ``vendor/``: the TensorFlow.js scripts (``@tensorflow/tfjs-core`` and its CPU and WebGL
  backends);
* ``weights.bin``: G's weights, float32 little-endian, one after the other;
* ``manifest.json``: the audio facts (``sample_rate``, ``latent_dim``, ``slice_len``,
  ``num_channels``), the training ``step``, ``class_names`` (null when unconditional), what the
  page names the model by (``model``: "wavegan" or "specgan", ``model_dim``: d, ``data``: the
  name of the training data folder or null when unknown, ``source``: the model folder's name,
  ``wavegan_tf_version``, ``docs_url``), G's layers in order with the inputs, settings and
  weight offsets the runtime needs, ``model_id`` (a hash of G's layers and weights, which
  keys what the page keeps in the browser's localStorage: kept pads and the saved sequencer
  pattern come back in any site of the same model, and only there), and the z (and label) of
  the eight pads the page starts with. Manifests written before ``model``, ``model_dim``,
  ``data``, ``docs_url`` and ``model_id`` existed still load; the page names what they hold.
* ``manifest.js`` and ``weights.js``: the same manifest and weights as scripts
  (``window.WAVEGAN_MANIFEST = {...}`` and ``window.WAVEGAN_WEIGHTS = "<base64>"``), which the
  page loads with ``<script>`` tags when it is opened from disk (file://), where browsers refuse
  to fetch files; served over HTTP it fetches ``manifest.json`` and ``weights.bin``.

The page and the scripts come from the installed package (``wavegan_tf/serving/web_assets/``,
which the wheel's build copies there) or else from the source checkout (``web/page/``, and
``web/node_modules/`` after ``npm ci`` in ``web/``): see :mod:`wavegan_tf.serving.web_sources`.

G is written layer by layer from its Keras model, so the page computes what the SavedModel
does: the runtime knows the layer types a WaveGAN generator is built from (:data:`LAYER_SETTINGS`);
any other layer is refused with an error naming it. The pads start from
``wavegan_tf.nets.latent.sample_z(8, latent_dim, seed)``: pad i plays clip i of
``generate.py --seed SEED`` (for a conditional model, with label i mod the number of classes).
With a z file (``generate.py --web SITE --z_in FILE``: a ``.npy`` or a JSON z file, such as
the page's "Export kept sounds" writes) pad i starts from row i of the file instead, with the
row's label when the file names labels; a file of fewer than eight rows leaves the remaining
pads to the seed, one of more than eight is refused.

The folder is written under a temporary name beside its target and renamed into place, so a
failed export leaves no half-written site and keeps a previous one.
"""

import base64
import hashlib
import json
import os
import shutil

import numpy as np

from wavegan_tf.files.atomic_files import atomic_output_dir
from wavegan_tf.files.directories import ensure_writable_dir
from wavegan_tf.nets.latent import check_z, load_z_and_labels, sample_z
from wavegan_tf.serving import pretrained, web_sources
from wavegan_tf.serving.export import load_keras_generator
from wavegan_tf.serving.loading import z_file_labels
from wavegan_tf.training.config import CONFIG_FILENAME
from wavegan_tf.training.settings import DEMO_DATA_DIR, TrainingOptions
from wavegan_tf.version import __version__

MANIFEST_FILENAME = "manifest.json"
WEIGHTS_FILENAME = "weights.bin"
# The manifest and weights as scripts, for a page opened from disk, and what they assign.
MANIFEST_SCRIPT = "manifest.js"
WEIGHTS_SCRIPT = "weights.js"
MANIFEST_VARIABLE = "WAVEGAN_MANIFEST"
WEIGHTS_VARIABLE = "WAVEGAN_WEIGHTS"
# Bytes base64-encoded at a time into weights.js (a multiple of 3: no padding inside).
BASE64_CHUNK = 3 * 2**20
MANIFEST_FORMAT = "wavegan-tfjs-1"
NUM_PADS = 8
# Where the page links for what it runs and how it was made.
DOCS_URL = "https://pypi.org/project/wavegan-tf/"
# web/ of the source tree: the page's sources and, after `npm ci`, the TensorFlow.js runtime.
WEB_SOURCE_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "web")
# The same files inside an installed wheel (setup.py copies them there; absent in a checkout).
PACKAGED_WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                web_sources.PACKAGED_DIRNAME)
PAGE_FILES = web_sources.PAGE_FILES
# The vendored scripts, in load order: tfjs-core, then its backends.
RUNTIME_FILES = web_sources.RUNTIME_FILES
VENDOR_SUBDIR = web_sources.VENDOR_SUBDIR
# Keras layer class -> the settings the browser runtime reads (and checks) from its config.
LAYER_SETTINGS = {
    "InputLayer": (),
    "Embedding": (),
    "Concatenate": ("axis",),
    "Dense": ("units", "activation", "use_bias"),
    "Reshape": ("target_shape",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Activation": ("activation",),
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "groups",
               "activation", "use_bias"),
    "Conv1DTranspose": ("filters", "kernel_size", "strides", "padding", "dilation_rate",
                        "output_padding", "activation", "use_bias"),
    "UpSampling1D": ("size",),
    "BatchNormalization": ("axis", "epsilon", "center", "scale"),
}
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid")


def runtime_paths(web_dir=None):
    """The page sources and vendored scripts to copy; FileNotFoundError saying what to run.

    ``web_dir`` is ``web/`` of a source checkout; by default the installed package's copy
    (:data:`PACKAGED_WEB_DIR`) when it has one, else this checkout's (:data:`WEB_SOURCE_DIR`).
    Returns ``(page_paths, runtime_paths)``.
    """
    if web_dir is None:
        if os.path.isdir(PACKAGED_WEB_DIR):
            return _packaged_paths(PACKAGED_WEB_DIR)
        if not os.path.isdir(WEB_SOURCE_DIR):
            raise FileNotFoundError(
                f"the drum machine page is not installed: neither this wavegan_tf "
                f"({PACKAGED_WEB_DIR!r}) nor a source checkout ({WEB_SOURCE_DIR!r}) holds it; "
                "run `npm ci` in web/ of a wavegan_tf source checkout, then install the "
                "package from it (pip install .)")
        web_dir = WEB_SOURCE_DIR
    pages = web_sources.source_page_paths(web_dir)
    missing_pages = [p for p in pages if not os.path.isfile(p)]
    if missing_pages:
        raise FileNotFoundError(f"the web page sources are missing ({missing_pages[0]!r}): "
                                "--web needs a wavegan_tf source checkout or an installed "
                                "wheel")
    runtime = web_sources.source_runtime_paths(web_dir)
    missing = [p for p in runtime if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"the TensorFlow.js runtime is not installed ({missing[0]!r} is "
                                f"missing): run `npm ci` in {web_dir}")
    return pages, runtime


def _packaged_paths(assets_dir):
    """:func:`runtime_paths` of an installed package's ``web_assets`` folder."""
    for paths, what in ((web_sources.packaged_page_paths(assets_dir), "the web page sources"),
                        (web_sources.packaged_runtime_paths(assets_dir),
                         "the TensorFlow.js runtime")):
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise FileNotFoundError(
                f"{what} is not in this installed wavegan_tf ({missing[0]!r} is missing): its "
                "wheel was built without them; run `npm ci` in web/ of a wavegan_tf source "
                "checkout, then build and install the wheel from it again (pip install .)")
    return (web_sources.packaged_page_paths(assets_dir),
            web_sources.packaged_runtime_paths(assets_dir))


def check_site_dir(site_dir, overwrite=False):
    """Refuses a site folder that holds files (unless ``overwrite``) or cannot be created."""
    if os.path.lexists(site_dir) and not os.path.isdir(site_dir):
        raise FileExistsError(f"web output {site_dir!r} exists and is not a folder")
    if os.path.isdir(site_dir) and os.listdir(site_dir) and not overwrite:
        raise FileExistsError(f"web output folder {site_dir!r} is not empty; pass --overwrite "
                              "to replace it")
    ensure_writable_dir(os.path.dirname(os.path.abspath(site_dir)))


# Layers that compute exactly what a standard Keras layer computes (the same weights and
# result, another formulation on some CPUs), so the browser runs them as that layer.
_STANDARD_EQUIVALENTS = {"PolyphaseConv1D": "Conv1D",
                         "PolyphaseConv1DTranspose": "Conv1DTranspose"}


def layer_graph(generator):
    """G's layers in order as manifest entries, and its weights as float32 arrays.

    Each entry holds ``name``, ``class_name``, ``inbound`` (the names of the layers it reads),
    ``config`` (the :data:`LAYER_SETTINGS` of its class) and ``weights`` (``name``, ``shape``,
    ``offset`` in bytes into the weights file). Raises ValueError naming a layer the browser
    runtime cannot compute.
    """
    entries, arrays, offset = [], [], 0
    configs = {layer["name"]: layer for layer in generator.get_config()["layers"]}
    for layer in generator.layers:
        class_name = configs[layer.name]["class_name"]
        class_name = _STANDARD_EQUIVALENTS.get(class_name, class_name)
        if class_name not in LAYER_SETTINGS:
            raise ValueError(f"layer {layer.name!r} ({class_name}) of the generator has no "
                             f"browser implementation; supported: {sorted(LAYER_SETTINGS)}")
        config = configs[layer.name]["config"]
        settings = {key: config.get(key) for key in LAYER_SETTINGS[class_name]}
        _check_settings(layer.name, settings)
        weights = []
        for variable in layer.weights:
            array = np.ascontiguousarray(variable.numpy(), dtype="<f4")
            weights.append({"name": variable.name, "shape": list(array.shape), "offset": offset})
            arrays.append(array)
            offset += array.nbytes
        entries.append({"name": layer.name, "class_name": class_name,
                        "inbound": _inbound_names(configs[layer.name]["inbound_nodes"]),
                        "config": settings, "weights": weights})
    return entries, arrays


def _check_settings(name, settings):
    """ValueError naming the layer ``name`` when one of its ``settings`` is outside what the
    browser runtime computes (it checks the same again when it loads)."""
    unsupported = {
        "activation": settings.get("activation", "linear") not in ACTIVATIONS,
        "dilation_rate": settings.get("dilation_rate", 1) not in (1, [1], (1,)),
        "groups": settings.get("groups", 1) != 1,
        "output_padding": settings.get("output_padding") is not None,
        "padding": settings.get("padding", "same") not in ("same", "valid"),
        "max_value": settings.get("max_value") is not None,
        "negative_slope": bool(settings.get("negative_slope")),
        "threshold": bool(settings.get("threshold")),
        "axis": settings.get("axis", -1) not in (-1, [-1]),
    }
    for key, bad in unsupported.items():
        if bad:
            raise ValueError(f"layer {name!r} has {key}={settings[key]!r}, which the browser "
                             "runtime does not support")


def _inbound_names(nodes):
    """Names of the layers whose outputs a layer's (single) call reads, in argument order."""
    names = []

    def visit(value):
        if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
            names.append(value["config"]["keras_history"][0])
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
    for node in nodes:
        visit(node["args"])
    return names


def training_data_name(model):
    """The name of the folder G was trained on, or None when the model does not say.

    A training directory's ``training.json`` names it (none: the built-in demo drums,
    ``demo_drums``); an export inside a training directory (``RUN/export``) takes its run's; a
    pretrained model's card says what its data was.
    """
    if pretrained.is_pretrained(model):
        return pretrained.card(model).get("data", "").split(":")[0] or None
    for directory in (model, os.path.dirname(os.path.normpath(model))):
        if os.path.isfile(os.path.join(directory, CONFIG_FILENAME)):
            try:
                data_dir = TrainingOptions.load(directory).data_dir or DEMO_DATA_DIR
            except (OSError, ValueError):
                return None
            return os.path.basename(os.path.normpath(data_dir))
    return None


def pad_starts(latent_dim, class_names, seed, source, z_in=None):
    """The z (float32 values as floats) and label of each pad: rows of the z file ``z_in``
    first, the rest from ``seed`` (pad i = clip i of the seed; label i mod the classes).
    ValueError naming the file when its z do not fit the model or are more than the pads."""
    z = sample_z(NUM_PADS, latent_dim, seed)
    labels = [None if class_names is None else i % len(class_names) for i in range(NUM_PADS)]
    if z_in is not None:
        chosen, names = load_z_and_labels(z_in)
        chosen = check_z(chosen, latent_dim, source=f"z file {z_in!r}")
        if len(chosen) > NUM_PADS:
            raise ValueError(f"z file {z_in!r} holds {len(chosen)} z, more than the page's "
                             f"{NUM_PADS} pads")
        z[:len(chosen)] = chosen
        indices = z_file_labels(z_in, names, class_names, source)
        if indices is not None:
            labels[:len(chosen)] = [int(i) for i in indices]
    return [{"z": [float(v) for v in row], "label": label} for row, label in zip(z, labels)]


def model_id(layers, arrays):
    """A short hash of G's layer entries and weights: the same for every site of a model."""
    digest = hashlib.sha256(json.dumps(layers, sort_keys=True).encode("utf-8"))
    for array in arrays:
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def site_manifest(config, generator, step, seed, source, z_in=None):
    """The manifest dict and the weight arrays of G (see the module doc)."""
    layers, arrays = layer_graph(generator)
    class_names = list(config.class_names) if config.conditional else None
    pads = pad_starts(config.latent_dim, class_names, seed, source, z_in)
    manifest = {
        "format": MANIFEST_FORMAT, "wavegan_tf_version": __version__, "docs_url": DOCS_URL,
        "model": config.model, "model_dim": config.model_dim,
        "data": training_data_name(source),
        "source": os.path.basename(os.path.normpath(source)), "step": int(step),
        "model_id": model_id(layers, arrays),
        "sample_rate": config.sample_rate, "latent_dim": config.latent_dim,
        "slice_len": config.slice_len, "num_channels": config.num_channels,
        "class_names": class_names,
        "inputs": _history_names(generator.get_config()["input_layers"]),
        "output": _history_names(generator.get_config()["output_layers"])[0],
        "weights_file": WEIGHTS_FILENAME, "layers": layers,
        "pads": {"seed": seed,
                 "z_file": None if z_in is None else os.path.basename(z_in), "pads": pads},
    }
    return manifest, arrays


def _history_names(histories):
    """Layer names of a functional config's ``input_layers`` / ``output_layers``, which hold one
    ``[name, node, index]`` triple or a list of them (``["z"]`` or ``["z", "label"]``)."""
    if histories and isinstance(histories[0], str):
        histories = [histories]
    return [history[0] for history in histories]


def write_weights(directory, arrays):
    """Writes ``arrays`` one after the other as ``weights.bin`` and, base64-encoded, as the
    script ``weights.js`` into ``directory``."""
    with open(os.path.join(directory, WEIGHTS_FILENAME), "wb") as f:
        for array in arrays:
            f.write(array.tobytes())
    with open(os.path.join(directory, WEIGHTS_FILENAME), "rb") as source, \
            open(os.path.join(directory, WEIGHTS_SCRIPT), "w", encoding="ascii") as f:
        f.write(f'window.{WEIGHTS_VARIABLE} = "')
        for chunk in iter(lambda: source.read(BASE64_CHUNK), b""):
            f.write(base64.b64encode(chunk).decode("ascii"))
        f.write('";\n')


def write_manifest(directory, manifest):
    """Writes ``manifest`` as ``manifest.json`` and as the script ``manifest.js`` into
    ``directory`` (ASCII JSON, which is also a JavaScript expression)."""
    with open(os.path.join(directory, MANIFEST_FILENAME), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.write("\n")
    with open(os.path.join(directory, MANIFEST_SCRIPT), "w", encoding="ascii") as f:
        f.write(f"window.{MANIFEST_VARIABLE} = ")
        json.dump(manifest, f, indent=1, allow_nan=False)
        f.write(";\n")


def export_web(model, site_dir, *, seed=0, z_in=None, overwrite=False, web_dir=None):
    """Writes the drum machine site of the model at ``model`` into ``site_dir``; returns it.

    ``model`` is a training directory or an export folder; ``seed`` picks the pads' first z,
    and the z file ``z_in`` (when given) those of its rows' pads.
    An existing non-empty ``site_dir`` is replaced only with ``overwrite``. Raises
    FileNotFoundError when the page sources or the TensorFlow.js runtime are missing (with what
    to run), FileExistsError or OSError for an output folder that cannot be used, ValueError
    for a model that cannot be exported or a z file that does not fit it; nothing is written
    then.
    """
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    pages, runtime = runtime_paths(web_dir)
    check_site_dir(site_dir, overwrite)
    config, generator, step = load_keras_generator(model)
    manifest, arrays = site_manifest(config, generator, step, seed, model, z_in)
    # Checked again once this writer's turn has come: another may have filled it meanwhile.
    with atomic_output_dir(site_dir, check=lambda: check_site_dir(site_dir, overwrite)) as tmp:
        for path in pages:
            shutil.copyfile(path, os.path.join(tmp, os.path.basename(path)))
        os.mkdir(os.path.join(tmp, VENDOR_SUBDIR))
        for path in runtime:
            shutil.copyfile(path, os.path.join(tmp, VENDOR_SUBDIR, os.path.basename(path)))
        write_weights(tmp, arrays)
        write_manifest(tmp, manifest)
    return site_dir
