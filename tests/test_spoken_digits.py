"""The espeak-ng spoken-digit recipe, at a tiny size."""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from wavegan_tf.audio import spoken_digits
from wavegan_tf.audio.spoken_digits import DIGITS, make_spoken_digits, split_voices

VOICES = ["en-us+m1", "en-gb+f2", "en-029+m3"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return make_spoken_digits(tmp_path_factory.mktemp("sd") / "digits", voices=VOICES, takes=1,
                              seed=0)


def test_layout_split_by_voice(built):
    voices_in = {}
    for split in spoken_digits.SPLITS:
        assert sorted(os.listdir(os.path.join(built, split))) == sorted(DIGITS)
        names = {n for d in DIGITS for n in os.listdir(os.path.join(built, split, d))}
        voices_in[split] = {n.rsplit("_", 1)[0] for n in names}
        assert len(voices_in[split]) == 1
        for digit in DIGITS:
            assert len(os.listdir(os.path.join(built, split, digit))) == 1
    assert len(set.union(*voices_in.values())) == 3


def test_clips_are_one_second_16k_16bit_with_speech(built):
    path = os.path.join(built, "train", "seven")
    name = os.listdir(path)[0]
    info = sf.info(os.path.join(path, name))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (
        16000, 1, 16000, "PCM_16")
    audio, _ = sf.read(os.path.join(path, name))
    assert np.max(np.abs(audio)) > 0.25
    assert np.mean(np.abs(audio) > 0.01) > 0.1


def test_rerun_keeps_files(built):
    path = os.path.join(built, "test", "one")
    stamp = os.stat(os.path.join(path, os.listdir(path)[0])).st_mtime_ns
    assert make_spoken_digits(built, voices=VOICES, takes=1, seed=0) == built
    assert os.stat(os.path.join(path, os.listdir(path)[0])).st_mtime_ns == stamp


def test_split_voices_never_shares_a_voice():
    voices = [f"v{i}" for i in range(20)]
    splits = split_voices(voices, (0.8, 0.1, 0.1), seed=3)
    assert [len(splits[s]) for s in spoken_digits.SPLITS] == [16, 2, 2]
    assert sorted(sum(splits.values(), [])) == sorted(voices)
    assert split_voices(voices, seed=3) == splits


def test_missing_espeak_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        make_spoken_digits(tmp_path / "x", voices=VOICES)


def test_unknown_voice_is_reported(tmp_path):
    with pytest.raises(ValueError, match="zz-nosuch"):
        make_spoken_digits(tmp_path / "x", voices=["zz-nosuch"], takes=1)
    assert not os.path.exists(tmp_path / "x")


def test_the_data_pipeline_reads_the_build(built):
    from wavegan_tf.audio.data import audio_dataset

    ds = audio_dataset(built, slice_len=16384, batch_size=10, repeat=False, seed=0)
    batches = [b.numpy() for b in ds]
    assert len(batches) == 3 and batches[0].shape == (10, 16384, 1)
    assert np.all(batches[0][:, 16000:] == 0)
