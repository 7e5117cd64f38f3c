"""The synthetic drum dataset: deterministic, complete, built once, rebuilt when interrupted."""

import os

import numpy as np
import pytest
import soundfile as sf

from wavegan_tf.audio.demo_data import KINDS, MARKER, ensure_demo_dataset


def wav_files(path):
    return sorted(os.path.relpath(os.path.join(root, name), path)
                  for root, _, names in os.walk(path) for name in names if name.endswith(".wav"))


def test_layout_count_length_and_format(tmp_path):
    path = ensure_demo_dataset(tmp_path / "drums", num_clips=24, seed=0)
    files = wav_files(path)
    assert len(files) == 24
    assert sorted({f.split(os.sep)[0] for f in files}) == sorted(KINDS)
    for kind in KINDS:
        assert sum(f.startswith(kind + os.sep) for f in files) == 6
    for rel in files:
        info = sf.info(os.path.join(path, rel))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (
            16000, 1, 16000, "PCM_16")
        audio, _ = sf.read(os.path.join(path, rel))
        assert 0.45 < np.max(np.abs(audio)) <= 0.95


def test_kinds_sound_different(tmp_path):
    path = ensure_demo_dataset(tmp_path / "drums", num_clips=40, seed=1)

    def centroid(kind):
        values = []
        for name in os.listdir(os.path.join(path, kind)):
            audio, rate = sf.read(os.path.join(path, kind, name))
            spectrum = np.abs(np.fft.rfft(audio))
            values.append(np.sum(spectrum * np.fft.rfftfreq(len(audio), 1 / rate))
                          / np.sum(spectrum))
        return np.median(values)

    assert centroid("kick") < centroid("snare") < centroid("hat")
    assert centroid("hat") > 4000


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = ensure_demo_dataset(tmp_path / "a", num_clips=8, seed=5)
    b = ensure_demo_dataset(tmp_path / "b", num_clips=8, seed=5)
    c = ensure_demo_dataset(tmp_path / "c", num_clips=8, seed=6)
    for rel in wav_files(a):
        with open(os.path.join(a, rel), "rb") as fa, open(os.path.join(b, rel), "rb") as fb:
            assert fa.read() == fb.read()
    assert sf.read(os.path.join(a, wav_files(a)[0]))[0].tolist() != \
        sf.read(os.path.join(c, wav_files(c)[0]))[0].tolist()


def test_second_call_does_not_rewrite(tmp_path):
    path = ensure_demo_dataset(tmp_path / "drums", num_clips=8)
    stamps = {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in wav_files(path)}
    assert ensure_demo_dataset(tmp_path / "drums", num_clips=8) == path
    assert {f: os.stat(os.path.join(path, f)).st_mtime_ns for f in wav_files(path)} == stamps


def test_interrupted_build_is_rebuilt(tmp_path):
    target = tmp_path / "drums"
    (target / "kick").mkdir(parents=True)
    (target / "kick" / "kick_0000.wav").write_bytes(b"RIFF")
    stale = tmp_path / ".drums.building-abc"
    (stale / "kick").mkdir(parents=True)
    path = ensure_demo_dataset(target, num_clips=8)
    assert len(wav_files(path)) == 8
    assert os.path.exists(os.path.join(path, MARKER))
    assert sf.info(os.path.join(path, "kick", "kick_0000.wav")).frames == 16000


def test_changed_settings_rebuild(tmp_path):
    ensure_demo_dataset(tmp_path / "drums", num_clips=8)
    assert len(wav_files(ensure_demo_dataset(tmp_path / "drums", num_clips=12))) == 12


def test_foreign_folder_is_left_alone(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "song.wav").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a demo dataset"):
        ensure_demo_dataset(tmp_path / "mine", num_clips=4)
    assert os.listdir(tmp_path / "mine") == ["song.wav"]


def test_bad_num_clips(tmp_path):
    with pytest.raises(ValueError, match="num_clips.*0"):
        ensure_demo_dataset(tmp_path / "d", num_clips=0)


# Builds the demo dataset in argv[1] with argv[2] clips, then waits for argv[3] processes to
# get there, watching that the folder it was given stays in place, and checks it again.
RACE_SCRIPT = """
import os, sys, time
from wavegan_tf.audio.demo_data import ensure_demo_dataset
path, clips, count, me = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
barrier = os.path.join(os.path.dirname(path), "barrier")
with open(os.path.join(barrier, "start-" + me), "w"):
    pass
while len(os.listdir(barrier)) < count:  # start the builds together
    time.sleep(0.005)
ensure_demo_dataset(path, num_clips=clips)
inode = os.stat(path).st_ino
with open(os.path.join(barrier, "done-" + me), "w"):
    pass
deadline = time.time() + 120
while len([n for n in os.listdir(barrier) if n.startswith("done-")]) < count:
    assert os.path.isdir(path), "the data folder vanished"
    assert time.time() < deadline
    time.sleep(0.001)
assert os.stat(path).st_ino == inode, "the complete folder was replaced"
wavs = [n for _, _, names in os.walk(path) for n in names if n.endswith(".wav")]
assert len(wavs) == clips, len(wavs)
print("ok")
"""


def test_concurrent_builders_in_separate_processes_all_succeed(tmp_path):
    """Two trainers started at once on a fresh clone both build the demo data: each must get a
    complete folder that stays in place (none is moved away under a reader)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = tmp_path / "demo_drums"
    (tmp_path / "barrier").mkdir()
    count = 3
    procs = [subprocess.Popen([sys.executable, "-c", RACE_SCRIPT, str(target), "12", str(count),
                               str(i)], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
             for i in range(count)]
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    assert len(wav_files(target)) == 12
    assert sorted(os.listdir(tmp_path)) == ["barrier", "demo_drums"]  # no build or lock left


def test_concurrent_builders_over_an_interrupted_build_keep_the_first_complete_one(tmp_path):
    import threading

    target = tmp_path / "drums"
    (target / "kick").mkdir(parents=True)
    (target / "kick" / "kick_0000.wav").write_bytes(b"RIFF")
    inodes, errors = [], []

    def build():
        try:
            ensure_demo_dataset(target, num_clips=8)
            inodes.append(os.stat(target).st_ino)
        except Exception as err:  # noqa: BLE001 -- reported below
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(inodes)) == 1 and os.stat(target).st_ino == inodes[0]
    assert len(wav_files(target)) == 8
    assert sorted(os.listdir(tmp_path)) == ["drums"]


def test_move_into_place_keeps_a_complete_folder_without_the_lock(tmp_path):
    from wavegan_tf.audio import demo_data

    first = ensure_demo_dataset(tmp_path / "drums", num_clips=4)
    inode = os.stat(first).st_ino
    build = tmp_path / ".drums.building-x"
    (build / "kick").mkdir(parents=True)
    demo_data._move_into_place(str(build), first, {"version": demo_data._VERSION,
                                                   "num_clips": 4, "seed": 0, "sample_rate": 16000})
    assert os.stat(first).st_ino == inode and build.exists()
