"""Throughput of the audio data pipeline.

Writes a synthetic folder of stereo 44.1 kHz 16-bit WAV files to a temporary directory, then
measures the first pass (find, decode, resample to 16 kHz mono: files/s and seconds of audio per
second) and the steady state (clips per second served at batch 64, slice 16384). The last line
is ``name=value`` pairs.

    python bench/data_pipeline.py [--files 600] [--seconds 2.0] [--batches 300]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wavegan_tf.audio.data import audio_dataset, load_audio_store  # noqa: E402


def write_folder(folder, num_files, seconds, rate=44100):
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    for i in range(num_files):
        tone = np.sin(2 * np.pi * rng.uniform(60, 2000) * t) * np.exp(-t * rng.uniform(0.5, 4))
        audio = np.stack([tone, tone + 0.05 * rng.standard_normal(len(t))], axis=1) * 0.5
        sf.write(os.path.join(folder, f"clip_{i:04d}.wav"), audio, rate, subtype="PCM_16")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--batches", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_folder(folder, args.files, args.seconds)
        start = time.perf_counter()
        load_audio_store(folder)
        decode = time.perf_counter() - start
        dataset = audio_dataset(folder, slice_len=16384, batch_size=64, seed=0)
        batches = iter(dataset)
        for _ in range(20):
            next(batches)
        start = time.perf_counter()
        for _ in range(args.batches):
            batch = next(batches)
        served = time.perf_counter() - start
        assert batch.shape == (64, 16384, 1)
    files_per_sec = args.files / decode
    clips_per_sec = args.batches * 64 / served
    print(f"first pass: {args.files} files of {args.seconds:g} s (44.1 kHz stereo) decoded and "
          f"resampled in {decode:.2f} s")
    print(f"steady state: {args.batches} batches of 64 x 16384 in {served:.2f} s")
    print(f"clips_per_sec={clips_per_sec:.0f} decode_files_per_sec={files_per_sec:.0f} "
          f"decode_audio_sec_per_sec={files_per_sec * args.seconds:.0f}")


if __name__ == "__main__":
    main()
