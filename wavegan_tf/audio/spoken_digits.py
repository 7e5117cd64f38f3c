"""An offline SC09-like dataset: the words "zero".."nine" spoken by the espeak-ng synthesiser.

SC09 (the digits of Speech Commands) is WaveGAN's benchmark. This recipe builds a stand-in with
no download: every voice (an espeak-ng language + voice variant, e.g. ``en-us+f2``) says every
digit several times at varied pitch (``-p``) and speed (``-s``). Each take is trimmed of
silence, resampled to 16 kHz mono with soxr, given a random level and placed at a random
position inside a one-second clip of 16000 samples (SC09's length; the data pipeline zero-pads
it to the model's slice length), and written as 16-bit WAV to
``<out>/{train,valid,test}/<digit>/<voice>_<take>.wav``. The split is made by voice, so no
voice is heard in two splits. Everything random is drawn from the seed, so a recipe is
repeatable.
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
import soxr

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
             "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4")
DEFAULT_VOICES = tuple(f"{lang}+{variant}" for lang in LANGUAGES for variant in VARIANTS)
SPLITS = ("train", "valid", "test")
MARKER = ".complete.json"
_INSTALL_HINT = ("install it with `sudo apt-get install espeak-ng` (Debian/Ubuntu) or "
                 "`brew install espeak-ng` (macOS)")


def make_spoken_digits(out_dir, voices=DEFAULT_VOICES, takes=3, sample_rate=16000,
                       clip_len=16000, split_fractions=(0.8, 0.1, 0.1), seed=0,
                       num_workers=None):
    """Build the spoken-digit dataset in ``out_dir`` and return ``out_dir``.

    Args:
      voices: espeak-ng voice names (``language+variant``); each lands in exactly one split.
      takes: renditions of each digit per voice, each with its own pitch, speed and placement.
      clip_len: samples per clip at ``sample_rate``.
      split_fractions: shares of the voices for train, valid and test; every split with a
        non-zero share gets at least one voice when there are enough voices.
      num_workers: parallel espeak-ng processes; default: CPU count.

    Nothing is done when ``out_dir`` already holds a complete build with the same settings. The
    build happens in a temporary folder beside ``out_dir`` that is renamed into place, with a
    marker file written last.

    Raises:
      FileNotFoundError: espeak-ng is not installed (the message says how to install it).
      ValueError: bad arguments, an unknown voice, or ``out_dir`` holds something else.
    """
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise FileNotFoundError(f"espeak-ng was not found on PATH; {_INSTALL_HINT}")
    voices = _check_args(voices, takes, sample_rate, clip_len, split_fractions)
    out_dir = os.path.abspath(os.fspath(out_dir))
    settings = {"voices": voices, "takes": takes, "sample_rate": sample_rate,
                "clip_len": clip_len, "split_fractions": list(split_fractions), "seed": seed}
    if _read_marker(out_dir) == settings:
        return out_dir
    if os.path.exists(out_dir) and os.listdir(out_dir) and _read_marker(out_dir) is None:
        raise ValueError(f"{out_dir!r} exists and is not a spoken-digit build; choose an empty "
                         f"or new folder")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    build = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.building-", dir=parent)
    os.chmod(build, 0o755)
    try:
        _build(espeak, build, settings, num_workers or os.cpu_count() or 1)
        with open(os.path.join(build, MARKER), "w") as f:
            json.dump(settings, f)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(build, out_dir)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out_dir


def split_voices(voices, split_fractions=(0.8, 0.1, 0.1), seed=0):
    """``{split: [voices]}``: a seeded shuffle of ``voices`` cut by ``split_fractions``."""
    order = [voices[i] for i in np.random.default_rng(seed).permutation(len(voices))]
    fractions = np.asarray(split_fractions, dtype=np.float64) / np.sum(split_fractions)
    counts = np.floor(fractions * len(order)).astype(int)
    largest = int(np.argmax(fractions))
    counts[largest] += len(order) - counts.sum()
    if len(order) >= np.count_nonzero(fractions):
        for i in np.flatnonzero((counts == 0) & (fractions > 0)):
            counts[i], counts[largest] = 1, counts[largest] - 1
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {split: order[bounds[i]:bounds[i + 1]] for i, split in enumerate(SPLITS)}


def speak(espeak, word, voice, pitch, speed, sample_rate):
    """Float32 mono audio of ``word`` spoken by espeak-ng, resampled to ``sample_rate``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "word.wav")
        result = subprocess.run([espeak, "-v", voice, "-p", str(pitch), "-s", str(speed),
                                 "-w", path, word], capture_output=True, text=True)
        if result.returncode != 0 or not os.path.exists(path):
            raise ValueError(f"espeak-ng failed for voice {voice!r}: "
                             f"{result.stderr.strip() or result.returncode}")
        audio, rate = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    return soxr.resample(audio, rate, sample_rate, quality="HQ") if rate != sample_rate else audio


def place_in_clip(audio, clip_len, rng, threshold=0.02):
    """Trim silence from ``audio``, then put it at a random position in ``clip_len`` samples."""
    loud = np.flatnonzero(np.abs(audio) > threshold * np.max(np.abs(audio)))
    word = audio[loud[0]:loud[-1] + 1] if len(loud) else audio
    word = word[:clip_len]
    start = int(rng.integers(0, clip_len - len(word) + 1))
    clip = np.zeros(clip_len, np.float32)
    clip[start:start + len(word)] = word
    return clip / max(np.max(np.abs(clip)), 1e-9) * rng.uniform(0.3, 0.9)


def _build(espeak, folder, settings, num_workers):
    splits = split_voices(settings["voices"], settings["split_fractions"], settings["seed"])
    jobs = []
    for split, voices in splits.items():
        for digit in DIGITS:
            os.makedirs(os.path.join(folder, split, digit))
        for voice in voices:
            for digit in DIGITS:
                for take in range(settings["takes"]):
                    jobs.append((split, voice, digit, take))
    with concurrent.futures.ThreadPoolExecutor(num_workers) as pool:
        list(pool.map(lambda job: _write_take(espeak, folder, settings, *job), jobs))


def _write_take(espeak, folder, settings, split, voice, digit, take):
    voice_index = settings["voices"].index(voice)
    rng = np.random.default_rng([settings["seed"], voice_index, DIGITS.index(digit), take])
    pitch, speed = int(rng.integers(25, 76)), int(rng.integers(120, 201))
    audio = speak(espeak, digit, voice, pitch, speed, settings["sample_rate"])
    clip = place_in_clip(audio, settings["clip_len"], rng)
    name = f"{voice.replace('+', '_')}_{take:02d}.wav"
    sf.write(os.path.join(folder, split, digit, name), clip, settings["sample_rate"],
             subtype="PCM_16")


def _read_marker(out_dir):
    try:
        with open(os.path.join(out_dir, MARKER)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _check_args(voices, takes, sample_rate, clip_len, split_fractions):
    voices = list(voices)
    if not voices or len(set(voices)) != len(voices):
        raise ValueError(f"voices must be a non-empty list without repeats, got {voices!r}")
    for name, value in (("takes", takes), ("sample_rate", sample_rate), ("clip_len", clip_len)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if len(split_fractions) != 3 or min(split_fractions) < 0 or sum(split_fractions) <= 0:
        raise ValueError(f"split_fractions must be three non-negative shares (train, valid, "
                         f"test), got {split_fractions!r}")
    return voices
