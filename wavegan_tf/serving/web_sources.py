"""Which files make the drum machine page, where they are, and how a build copies them.

Two places hold them:

* a source checkout: ``web/page/`` (the page's sources, the only copy in git) and
  ``web/node_modules/`` (the TensorFlow.js scripts, which ``npm ci`` in ``web/`` installs at the
  versions ``web/package-lock.json`` pins);
* an installed wheel: ``wavegan_tf/serving/web_assets/`` with ``page/`` and ``vendor/``, which
  the build (``setup.py``'s ``build_py``) copies from the checkout with :func:`copy_web_assets`.

This module imports nothing but the standard library: ``setup.py`` loads it by path, before
the package's requirements are installed.
"""

import os
import shutil

PAGE_FILES = ("index.html", "style.css", "drum_machine.js", "wavegan_runtime.js")
# The vendored scripts, in load order: tfjs-core, then its backends (paths in node_modules/).
RUNTIME_FILES = (
    "@tensorflow/tfjs-core/dist/tf-core.min.js",
    "@tensorflow/tfjs-backend-cpu/dist/tf-backend-cpu.min.js",
    "@tensorflow/tfjs-backend-webgl/dist/tf-backend-webgl.min.js",
)
# The folder of a site (and of the packaged assets) that holds the runtime scripts.
VENDOR_SUBDIR = "vendor"
PAGE_SUBDIR = "page"
# wavegan_tf/serving/<this>/ in an installed wheel.
PACKAGED_DIRNAME = "web_assets"


def source_page_paths(web_dir):
    """The page sources in ``web_dir`` (``web/`` of a checkout), in :data:`PAGE_FILES` order."""
    return [os.path.join(web_dir, PAGE_SUBDIR, name) for name in PAGE_FILES]


def source_runtime_paths(web_dir):
    """The runtime scripts in ``web_dir/node_modules``, in :data:`RUNTIME_FILES` order."""
    return [os.path.join(web_dir, "node_modules", *name.split("/")) for name in RUNTIME_FILES]


def packaged_page_paths(assets_dir):
    """The page sources in ``assets_dir`` (``web_assets/`` of an installed package)."""
    return [os.path.join(assets_dir, PAGE_SUBDIR, name) for name in PAGE_FILES]


def packaged_runtime_paths(assets_dir):
    """The runtime scripts in ``assets_dir/vendor`` (named as in a site)."""
    return [os.path.join(assets_dir, VENDOR_SUBDIR, name.rsplit("/", 1)[-1])
            for name in RUNTIME_FILES]


def copy_web_assets(web_dir, assets_dir):
    """Copies the page sources and runtime scripts of ``web_dir`` into ``assets_dir`` (laid out
    as :func:`packaged_page_paths` and :func:`packaged_runtime_paths` read them).

    Copies what exists and returns the source paths that are missing (none: all copied). The
    runtime is copied only when all of its scripts are there, and the page only when all of its
    files are, so an installed package holds each whole or not at all.
    """
    missing = []
    for sources, targets in ((source_page_paths(web_dir), packaged_page_paths(assets_dir)),
                             (source_runtime_paths(web_dir),
                              packaged_runtime_paths(assets_dir))):
        absent = [path for path in sources if not os.path.isfile(path)]
        missing.extend(absent)
        if absent:
            continue
        for source, target in zip(sources, targets):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(source, target)
    return missing
