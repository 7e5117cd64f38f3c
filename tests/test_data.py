"""The audio data pipeline: formats, resampling, slicing, bad files, errors, batches, seeds."""

import logging
import os

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf

from wavegan_tf.audio import data, slicing
from wavegan_tf.audio.audio_files import (audio_extensions, decode_audio_file, find_audio_files,
                                    scan_audio_folder)


def tone(freq, seconds, rate, channels=1, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    mono = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def peak_frequency(audio, rate):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.argmax(spectrum) * rate / len(audio)


def batches_of(dataset):
    return np.concatenate([b.numpy() for b in dataset])


FORMATS = [
    ("u8.wav", "WAV", "PCM_U8", 8000, 1),
    ("s16.wav", "WAV", "PCM_16", 22050, 2),
    ("s24.WAV", "WAV", "PCM_24", 44100, 1),
    ("s32.wav", "WAV", "PCM_32", 48000, 2),
    ("float.wav", "WAV", "FLOAT", 16000, 1),
    ("lossless.flac", "FLAC", "PCM_16", 44100, 2),
    ("vorbis.ogg", "OGG", "VORBIS", 48000, 1),
    ("apple.aiff", "AIFF", "PCM_16", 22050, 1),
    ("apple2.Aif", "AIFF", "PCM_24", 16000, 2),
]


@pytest.mark.parametrize("name,fmt,subtype,rate,channels", FORMATS)
def test_every_format_decodes_and_resamples_to_a_440hz_tone(tmp_path, name, fmt, subtype, rate,
                                                            channels):
    path = tmp_path / name
    sf.write(path, tone(440, 1.0, rate, channels), rate, format=fmt, subtype=subtype)
    audio = decode_audio_file(str(path), 16000, 1)
    assert audio.dtype == np.float32 and audio.shape[1] == 1
    assert abs(len(audio) - 16000) <= 2
    assert abs(peak_frequency(audio[:, 0], 16000) - 440) < 2
    assert 0.4 < np.max(np.abs(audio)) < 0.6


def test_channels_are_mixed_down_or_duplicated(tmp_path):
    stereo = np.stack([np.full(800, 0.5), np.full(800, -0.1)], axis=1)
    sf.write(tmp_path / "st.wav", stereo, 16000, subtype="FLOAT")
    np.testing.assert_allclose(decode_audio_file(str(tmp_path / "st.wav"), 16000, 1), 0.2,
                               atol=1e-6)
    sf.write(tmp_path / "mono.wav", np.full(800, 0.25), 16000, subtype="FLOAT")
    three = decode_audio_file(str(tmp_path / "mono.wav"), 16000, 3)
    assert three.shape == (800, 3)
    np.testing.assert_allclose(three, 0.25)


def test_finds_audio_recursively_and_counts_other_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ["x.wav", "a/y.FLAC", "a/b/z.ogg", "a/b/w.aif"]:
        sf.write(tmp_path / rel, tone(100, 0.1, 16000), 16000,
                 format={"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "aif": "AIFF"}[
                     rel.rsplit(".", 1)[1].lower()])
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "a" / "cover.jpg").write_bytes(b"\xff\xd8")
    found, ignored = find_audio_files(str(tmp_path))
    assert [os.path.relpath(p, tmp_path) for p in found] == sorted(
        ["x.wav", "a/y.FLAC", "a/b/z.ogg", "a/b/w.aif"])
    assert ignored == 2
    assert ".wav" in audio_extensions() and ".aiff" in audio_extensions()


def write_bad_files(folder):
    good = tone(300, 0.5, 16000)
    sf.write(folder / "good1.wav", good, 16000)
    sf.write(folder / "good2.flac", good, 16000)
    sf.write(folder / "cut.wav", good, 16000)
    raw = (folder / "cut.wav").read_bytes()
    (folder / "cut.wav").write_bytes(raw[:len(raw) // 2])
    (folder / "stub.flac").write_bytes(raw[:30])
    sf.write(folder / "empty.wav", np.zeros(0), 16000)
    (folder / "text.wav").write_text("this is not audio\n" * 20)
    nan = good.copy()
    nan[100] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    inf = good.copy()
    inf[5] = np.inf
    sf.write(folder / "inf.wav", inf, 16000, subtype="DOUBLE")
    (folder / "readme.md").write_text("not audio")


def test_bad_files_are_skipped_with_one_warning_each_and_a_summary(tmp_path, caplog):
    write_bad_files(tmp_path)
    caplog.set_level(logging.INFO, logger="absl")  # its own level may be WARNING
    report = scan_audio_folder(str(tmp_path))
    assert sorted(os.path.basename(p) for p in report.used) == ["good1.wav", "good2.flac"]
    reasons = {os.path.basename(p): r for p, r in report.skipped}
    assert set(reasons) == {"cut.wav", "stub.flac", "empty.wav", "text.wav", "nan.wav",
                            "inf.wav"}
    assert "truncated" in reasons["cut.wav"]
    assert "empty" in reasons["empty.wav"]
    assert "NaN" in reasons["nan.wav"] and "NaN" in reasons["inf.wav"]
    assert "cannot decode" in reasons["text.wav"]
    assert report.ignored == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name, reason in reasons.items():
        assert sum(name in w and reason in w for w in warnings) == 1
    assert any("2 files used, 6 skipped" in r.getMessage() for r in caplog.records)


def test_dataset_is_built_despite_bad_files(tmp_path):
    write_bad_files(tmp_path)
    ds = data.audio_dataset(str(tmp_path), slice_len=256, batch_size=8, repeat=False, seed=0)
    assert batches_of(ds).shape[1:] == (256, 1)


def test_missing_folder_names_folder_and_extensions(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"nowhere.*\.wav.*\.flac"):
        data.audio_dataset(missing)


def test_folder_without_usable_audio_names_folder_and_extensions(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "fake.wav").write_text("x")
    with pytest.raises(ValueError, match=r"no usable audio.*" + tmp_path.name + r".*\.ogg"):
        data.audio_dataset(str(tmp_path))


@pytest.mark.parametrize("name,value", [("slice_len", 0), ("num_channels", 0),
                                        ("batch_size", -1), ("sample_rate", 0),
                                        ("overlap_ratio", 1.0), ("max_cache_bytes", 0)])
def test_bad_arguments_name_argument_and_value(tmp_path, name, value):
    sf.write(tmp_path / "a.wav", tone(100, 0.1, 16000), 16000)
    with pytest.raises(ValueError, match=rf"{name}.*{value}"):
        data.audio_dataset(str(tmp_path), **{name: value})


def test_too_few_windows_for_a_batch_is_an_error(tmp_path):
    sf.write(tmp_path / "a.wav", tone(100, 0.5, 16000), 16000)
    with pytest.raises(ValueError, match=r"only 30 windows.*batch_size=64"):
        data.audio_dataset(str(tmp_path), slice_len=256, batch_size=64)


def test_audio_larger_than_the_memory_limit_is_refused_before_decoding(tmp_path):
    sf.write(tmp_path / "a.wav", tone(100, 1.0, 16000), 16000)
    with pytest.raises(ValueError, match=r"a\.wav|" + tmp_path.name + r".*64000 bytes.*"
                                         r"max_cache_bytes"):
        data.audio_dataset(str(tmp_path), slice_len=256, max_cache_bytes=1000)


def ramp_folder(folder, lengths):
    """Files whose samples encode (file, position): value = file + position / 10**5."""
    for f, n in enumerate(lengths):
        sf.write(folder / f"f{f}.wav", (f + 1 + np.arange(n) / 1e5) / 16, 16000,
                 subtype="FLOAT")


def decode_ramp(window):
    """(file, start) of a window of ramp samples."""
    value = window[0, 0] * 16
    return int(value) - 1, int(round((value - int(value)) * 1e5))


@pytest.mark.parametrize("overlap,pad_end", [(0.0, False), (0.0, True), (0.5, False),
                                             (0.75, True)])
def test_each_pass_slices_every_file_by_the_rule(tmp_path, overlap, pad_end):
    lengths = [1000, 700, 100, 2000]
    ramp_folder(tmp_path, lengths)
    hop = slicing.hop_length(256, overlap)
    ds = data.audio_dataset(str(tmp_path), slice_len=256, batch_size=1, overlap_ratio=overlap,
                            pad_end=pad_end, normalize=False, shuffle=False, repeat=False, seed=3)
    windows = batches_of(ds)
    files = [decode_ramp(w)[0] for w in windows]
    assert files == sorted(files) and sorted(set(files)) == [0, 1, 2, 3]
    for f, n in enumerate(lengths):
        mine = windows[np.array(files) == f][:, :, 0]
        offset = decode_ramp(mine[:1, :, None][0])[1]
        assert 0 <= offset < int(slicing.max_offset(n, 256, hop))
        expected = slicing.extract_windows((f + 1 + np.arange(n) / 1e5) / 16, 256, overlap,
                                           pad_end, offset=offset)
        assert mine.shape == expected.shape
        np.testing.assert_allclose(mine, expected, atol=1e-7)


def test_first_slice_takes_one_window_from_the_start_of_each_file(tmp_path):
    ramp_folder(tmp_path, [1000, 700, 100, 2000])
    ds = data.audio_dataset(str(tmp_path), slice_len=256, batch_size=4, first_slice=True,
                            normalize=False, shuffle=False, repeat=False)
    windows = batches_of(ds)
    assert [decode_ramp(w) for w in windows] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    np.testing.assert_array_equal(windows[2, 100:], 0)


def test_window_table_in_tensorflow_matches_numpy():
    lengths = np.array([100, 1000, 2000, 257])
    offsets = np.array([0, 100, 127, 1])
    for pad_end in (False, True):
        for first in (False, True):
            expected = slicing.window_table(lengths, 256, 128, pad_end, first, offsets)
            got = data.window_table(lengths, 256, 128, pad_end, first, offsets)
            for e, g in zip(expected, got):
                np.testing.assert_array_equal(e, g.numpy())


def test_batches_have_promised_shape_dtype_and_range(tmp_path):
    for i in range(3):
        sf.write(tmp_path / f"s{i}.wav", tone(200 + 50 * i, 0.3, 22050, 2, amp=0.2 + 0.1 * i),
                 22050)
    ds = data.audio_dataset(str(tmp_path), slice_len=512, batch_size=4, num_channels=2, seed=1)
    assert ds.element_spec.shape == (4, 512, 2) and ds.element_spec.dtype == tf.float32
    batch = next(iter(ds)).numpy()
    assert batch.shape == (4, 512, 2) and batch.dtype == np.float32
    assert np.max(np.abs(batch)) <= 1.0
    assert np.max(np.abs(batch)) > 0.99  # peak-normalised


def test_normalize_false_keeps_levels(tmp_path):
    sf.write(tmp_path / "q.wav", tone(200, 0.5, 16000, amp=0.25), 16000, subtype="FLOAT")
    ds = data.audio_dataset(str(tmp_path), slice_len=256, batch_size=8, normalize=False,
                            repeat=False)
    assert 0.24 < np.max(np.abs(batches_of(ds))) <= 0.25 + 1e-6


def test_seed_makes_batches_repeatable_and_repeat_runs_on(tmp_path):
    ramp_folder(tmp_path, [3000, 2500, 4000])

    def take(seed, n=12):
        ds = data.audio_dataset(str(tmp_path), slice_len=256, batch_size=4, seed=seed)
        return np.stack([b.numpy() for b in ds.take(n)])

    first = take(7)
    np.testing.assert_array_equal(first, take(7))
    assert not np.array_equal(first, take(8))
    assert len(first) == 12  # 37 or fewer windows per pass: the dataset repeats endlessly


def test_disk_cache_is_written_once_and_reused(tmp_path):
    folder, cache = tmp_path / "audio", tmp_path / "cache"
    folder.mkdir()
    ramp_folder(folder, [1000, 1500])
    ds = data.audio_dataset(str(folder), slice_len=256, batch_size=2, cache=str(cache),
                            normalize=False, shuffle=False, repeat=False, first_slice=True)
    entries = sorted(os.listdir(cache))
    assert len(entries) == 2 and all(e.endswith(".npy") for e in entries)
    mtimes = [os.path.getmtime(cache / e) for e in entries]
    again = data.audio_dataset(str(folder), slice_len=256, batch_size=2, cache=str(cache),
                               normalize=False, shuffle=False, repeat=False, first_slice=True)
    np.testing.assert_array_equal(batches_of(ds), batches_of(again))
    assert [os.path.getmtime(cache / e) for e in entries] == mtimes
    sf.write(folder / "f0.wav", np.full(1000, 0.125), 16000, subtype="FLOAT")
    changed = data.audio_dataset(str(folder), slice_len=256, batch_size=2, cache=str(cache),
                                 normalize=False, shuffle=False, repeat=False, first_slice=True)
    assert len(os.listdir(cache)) == 3
    np.testing.assert_allclose(batches_of(changed)[0], 0.125)
