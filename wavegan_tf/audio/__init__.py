"""Audio: finding and decoding files, slicing clips, the tf.data pipeline, spectrograms, WAV
writing, pictures, and the built-in datasets (demo drums, spoken digits)."""
