"""The pretrained models that ship with the package: each loads by name on a fresh checkout,
generates through generate.py, and sounds like its data: the digit model says most digits to
the benchmark's digit classifier (kept in tests/data), the drum model is as sparse as the demo
drums."""

import os
import subprocess
import sys

import numpy as np
import soundfile as sf

from wavegan_tf.audio.data import audio_dataset
from wavegan_tf.audio.demo_data import ensure_demo_dataset
from wavegan_tf.eval.audio_stats import clip_statistics
from wavegan_tf.eval.classifier import load_classifier
from wavegan_tf.eval.scoring import class_histogram, embed_generator
from wavegan_tf.nets.latent import sample_z
from wavegan_tf.serving import loading, pretrained

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ["digits", "drums"]
CLIPS = 200
# The benchmark's classifier of the spoken-digit recipe (32 filters, 10 epochs, seed 0: 100% on
# the 210 held-out clips), as bench/quality.py trained and cached it.
DIGIT_CLASSIFIER = os.path.join(ROOT, "tests", "data", "digit_classifier.keras")
MIN_DIGITS = 8
# The packed weights stay small enough to keep in the repository.
MAX_BYTES = 10 * 1024 * 1024


def test_the_shipped_models_are_listed_with_their_cards():
    assert pretrained.names() == SHIPPED
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"),
                           "--list_pretrained"], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in SHIPPED:
        card = pretrained.card(name)
        assert f"pretrained:{name}: {card['description']}" in proc.stdout
        for field in ("data", "licence", "command", "minutes", "peak_gflops", "scores"):
            assert field in card, (name, field)
        folder = pretrained.folder(name)
        size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
        assert size <= MAX_BYTES, (name, size)


def test_generate_py_writes_clips_from_a_pretrained_model(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "generate.py"),
                           "--model=pretrained:drums", "--n=3", f"--out_dir={tmp_path}"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    wavs = sorted(p for p in os.listdir(tmp_path) if p.endswith(".wav"))
    assert len(wavs) == 3
    audio, rate = sf.read(tmp_path / wavs[0])
    assert rate == 16000 and len(audio) == 16384 and np.std(audio) > 0.01


def test_the_drum_model_is_as_sparse_as_the_demo_drums(tmp_path):
    model = loading.load_pretrained("drums")
    clips = model.generate(sample_z(CLIPS, model.latent_dim, 0))
    real_dir = ensure_demo_dataset(str(tmp_path / "drums"))
    real = np.concatenate([b.numpy() for b in audio_dataset(
        real_dir, batch_size=50, seed=0, first_slice=True).take(4)])
    generated = clip_statistics(clips, model.sample_rate)["silent_frame_share"]
    expected = clip_statistics(real, model.sample_rate)["silent_frame_share"]
    assert abs(generated - expected) <= 0.25 * expected, (generated, expected)


def test_the_digit_model_says_at_least_eight_digits():
    model = loading.load_pretrained("digits")
    classifier = load_classifier(DIGIT_CLASSIFIER)
    embeddings = embed_generator(classifier, model.generate, model.latent_dim, CLIPS, seed=0,
                                 sample_rate=model.sample_rate)
    shares = class_histogram(embeddings, classifier.class_names)
    present = [name for name, share in shares.items() if share > 0]
    assert len(present) >= MIN_DIGITS, shares
    assert max(shares.values()) < 0.5, shares
