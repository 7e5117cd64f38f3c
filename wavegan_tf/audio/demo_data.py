"""A small synthetic drum dataset, so training runs out of the box with no download.

:func:`ensure_demo_dataset` writes one-second 16-bit mono WAV drum hits into one subfolder per
drum kind (``kick/``, ``snare/``, ``hat/``, ``tom/``; the subfolder names can serve as labels).
Every clip is synthesised from the seed alone, so the same seed always gives the same files.

* kick: a sine whose pitch sweeps down exponentially, with a short noise click;
* snare: a two-partial tone plus coloured noise (anything from blue to pink);
* hat: high-passed noise, closed (short) or open (long);
* tom: a sine with a small pitch drop over a wide range of pitches, with a breath of noise.

Pitch, decay, noise colour, onset and level vary from clip to clip.
"""

import json
import os
import shutil
import tempfile
import time

import numpy as np
import scipy.signal
import soundfile as sf

from wavegan_tf.files import locks

KINDS = ("kick", "snare", "hat", "tom")
MARKER = ".complete.json"
_VERSION = 1
_STALE_BUILD_SECONDS = 3600


def ensure_demo_dataset(path, num_clips=400, seed=0, sample_rate=16000):
    """Make sure ``path`` holds the demo dataset for these settings; return ``path``.

    Nothing is written when ``path`` already holds a complete build with the same settings. A
    build goes into a temporary folder beside ``path`` and is renamed into place with a marker
    file written last, so an interrupted build is never mistaken for a complete one and is
    simply built again. An existing ``path`` that is not a demo dataset is left alone (error).
    """
    if isinstance(num_clips, bool) or not isinstance(num_clips, (int, np.integer)) \
            or num_clips < 1:
        raise ValueError(f"num_clips must be a positive integer, got {num_clips!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) \
            or sample_rate < 8000:
        raise ValueError(f"sample_rate must be an integer >= 8000, got {sample_rate!r}")
    path = os.path.abspath(os.fspath(path))
    settings = {"version": _VERSION, "num_clips": int(num_clips), "seed": int(seed),
                "sample_rate": int(sample_rate)}
    if _is_complete(path, settings):
        return path
    _check_replaceable(path)
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    # One builder at a time: a second process waits here, then finds the first one's build.
    with locks.exclusive_lock(os.path.join(parent, f".{name}.lock")):
        if _is_complete(path, settings):
            return path
        _check_replaceable(path)
        _remove_stale_builds(parent, name)
        build = tempfile.mkdtemp(prefix=f".{name}.building-", dir=parent)
        os.chmod(build, 0o755)
        try:
            _write_clips(build, settings)
            with open(os.path.join(build, MARKER), "w") as f:
                json.dump(settings, f)
            _move_into_place(build, path, settings)
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return path


def synthesize_clip(kind, rng, sample_rate=16000, duration=1.0):
    """One drum hit of ``kind`` as float32 in [-1, 1], with parameters drawn from ``rng``."""
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    hit = _SYNTHS[kind](t, rng, sample_rate)
    onset = int(rng.uniform(0.0, 0.02) * sample_rate)
    hit = np.concatenate([np.zeros(onset), hit[:n - onset]])
    fade = np.minimum(1.0, (n - 1 - np.arange(n)) / (0.005 * sample_rate))
    hit *= fade
    return (hit / np.max(np.abs(hit)) * rng.uniform(0.5, 0.95)).astype(np.float32)


def _kick(t, rng, sr):
    f_start, f_end = rng.uniform(120, 260), rng.uniform(38, 65)
    sweep = rng.uniform(0.015, 0.06)
    freq = f_end + (f_start - f_end) * np.exp(-t / sweep)
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / rng.uniform(0.12, 0.45))
    click = _coloured_noise(len(t), rng.uniform(-1, 0.5), rng) * np.exp(-t / 0.004)
    return body + rng.uniform(0.1, 0.4) * click


def _snare(t, rng, sr):
    f0 = rng.uniform(160, 260)
    tone = (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 1.6 * f0 * t)) \
        * np.exp(-t / rng.uniform(0.03, 0.09))
    noise = _coloured_noise(len(t), rng.uniform(-1.0, 1.0), rng) \
        * np.exp(-t / rng.uniform(0.08, 0.25))
    return rng.uniform(0.3, 0.8) * tone + noise


def _hat(t, rng, sr):
    cutoff = min(rng.uniform(5000, 8000), 0.45 * sr)
    sos = scipy.signal.butter(4, cutoff, "highpass", fs=sr, output="sos")
    noise = scipy.signal.sosfilt(sos, rng.standard_normal(len(t)))
    decay = rng.uniform(0.015, 0.06) if rng.random() < 0.7 else rng.uniform(0.15, 0.4)
    return noise * np.exp(-t / decay)


def _tom(t, rng, sr):
    f0 = rng.uniform(80, 320)
    freq = f0 * (1 + rng.uniform(0.05, 0.3) * np.exp(-t / 0.05))
    body = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / rng.uniform(0.15, 0.5))
    noise = _coloured_noise(len(t), rng.uniform(0, 1.5), rng) * np.exp(-t / 0.02)
    return body + rng.uniform(0.05, 0.25) * noise


_SYNTHS = {"kick": _kick, "snare": _snare, "hat": _hat, "tom": _tom}


def _coloured_noise(n, exponent, rng):
    """Unit-peak noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, -1 blue)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.maximum(np.arange(len(spectrum)), 1.0)
    noise = np.fft.irfft(spectrum / freqs ** (exponent / 2), n)
    return noise / np.max(np.abs(noise))


def _write_clips(folder, settings):
    for kind in KINDS:
        os.makedirs(os.path.join(folder, kind))
    for i in range(settings["num_clips"]):
        kind = KINDS[i % len(KINDS)]
        rng = np.random.default_rng([settings["seed"], i])
        clip = synthesize_clip(kind, rng, settings["sample_rate"])
        sf.write(os.path.join(folder, kind, f"{kind}_{i // len(KINDS):04d}.wav"), clip,
                 settings["sample_rate"], subtype="PCM_16")


def _is_complete(path, settings):
    try:
        with open(os.path.join(path, MARKER)) as f:
            return json.load(f) == settings
    except (OSError, ValueError):
        return False


def _check_replaceable(path):
    """Refuse to replace a folder that holds anything but demo drum subfolders."""
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} exists and is not a folder; cannot build the demo dataset")
    foreign = [n for n in os.listdir(path) if n not in KINDS and n != MARKER]
    if foreign:
        raise ValueError(f"{path!r} exists and holds {sorted(foreign)[:5]}, so it is not a demo "
                         f"dataset; choose another path or empty it")


def _remove_stale_builds(parent, name):
    """Delete build folders left by runs that were killed long ago."""
    prefix = f".{name}.building-"
    for entry in os.listdir(parent):
        full = os.path.join(parent, entry)
        if entry.startswith(prefix) and time.time() - os.path.getmtime(full) > \
                _STALE_BUILD_SECONDS:
            shutil.rmtree(full, ignore_errors=True)


def _move_into_place(build, path, settings):
    """Rename ``build`` to ``path``, first moving an incomplete old ``path`` out of the way.

    A complete ``path`` with the same settings is kept (another builder finished first; a
    process may already read it), and ``build`` is left for the caller to delete. Safe without
    the build lock too (file systems without flock): a complete folder is never moved away.
    """
    for _ in range(10):
        if _is_complete(path, settings):
            return
        if os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-",
                                   dir=os.path.dirname(path))
            try:
                os.rename(path, os.path.join(old, "data"))
            except FileNotFoundError:
                pass  # another builder moved it first
            finally:
                shutil.rmtree(old, ignore_errors=True)
        try:
            os.rename(build, path)
            return
        except OSError:
            if _is_complete(path, settings):
                return
    raise OSError(f"cannot move the demo dataset into place at {path!r}: another process keeps "
                  f"replacing it")
