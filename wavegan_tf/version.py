"""The package's version: one literal, read by setuptools without importing TensorFlow, and by
the modules that stamp it into exports, manifests and classifier files."""

__version__ = "0.1.0"
