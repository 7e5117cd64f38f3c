"""Serving: loading a trained G from any format, generation, and the SavedModel, LiteRT and web
exports; the TF1 checkpoint converter."""
