"""MkDocs hook: the drum machine page of the pretrained drums, built into the site as ``demo/``.

Each MkDocs process (a build, or the start of ``mkdocs serve``) writes the site with
``generate.py --web``'s code (``export_web``) from the model that ships in the package
(``pretrained:drums``, pads from seed 0) and the page sources of this checkout, so the demo
runs the page of the checkout it was built from; nothing of it is kept in git. The site
opens from disk as well as served, like any ``--web`` folder. It needs the TensorFlow.js
scripts that ``npm ci`` in ``web/`` installs.
"""

import os
import shutil
import tempfile

from mkdocs.structure.files import File

DEMO_DIR = "demo"
MODEL = "pretrained:drums"
SEED = 0
# The checkout's page sources, not an installed wheel's copy of them.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB_DIR = os.path.join(ROOT, "web")
_build = {}


def _demo_root():
    """A temporary folder holding ``demo/``, written once per MkDocs process."""
    if "root" not in _build:
        from wavegan_tf.serving.web_export import export_web

        root = tempfile.mkdtemp(prefix="wavegan-docs-demo-")
        export_web(MODEL, os.path.join(root, DEMO_DIR), seed=SEED, web_dir=WEB_DIR)
        _build["root"] = root
    return _build["root"]


def on_files(files, config):
    """Adds the demo site's files to the documentation's, to be copied into the site as-is."""
    root = _demo_root()
    for folder, _, names in os.walk(os.path.join(root, DEMO_DIR)):
        for name in sorted(names):
            path = os.path.relpath(os.path.join(folder, name), root)
            files.append(File(path, root, config["site_dir"], config["use_directory_urls"]))
    return files


def on_shutdown():
    """Removes the temporary folder when MkDocs ends."""
    root = _build.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
