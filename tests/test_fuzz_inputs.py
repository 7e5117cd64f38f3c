"""Fuzzed inputs: corrupt and hostile files, each a one-line skip or a clear error naming the
file, in bounded memory.

Property tests (hypothesis) build audio files whose headers lie (sizes, rates, channel counts,
chunk lengths, a claim of 2**31 frames), random bytes behind real magic numbers, zero-length and
NaN/inf data, and folders with symlink loops, FIFOs and odd names; the decoder must skip each bad
file with one line naming it, allocate nothing from a header's claim (tracemalloc and the
process's peak RSS), and the pipeline must still batch the good files. The same goes for
``--z_in`` files, ``config.json`` / ``training.json``, the web page's ``manifest.json`` and
TF1 checkpoints with missing or wrongly shaped variables. Example counts are kept small
(:data:`FEW`, :data:`SOME`) so the module runs in well under a minute.
"""

import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import tracemalloc

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings, strategies as st

from wavegan_tf.audio import audio_files, data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEW = 15
SOME = 40


def fuzz(examples):
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


u8, u16, u32 = (st.integers(0, 2**bits - 1) for bits in (8, 16, 32))
# 2**31 frames: the claim of the issue.
CLAIMS = st.sampled_from([0, 1, 2**31, 2**31 - 1, 2**32 - 1, 0x7FFFFFFF, 0xFFFFFFFF])


def lie(honest, bits):
    """Mostly an honest value, else anything that fits in ``bits`` bits or an edge value."""
    return st.one_of(honest, st.integers(0, 2**bits - 1), st.sampled_from([0, 2**bits - 1]))


# -- hostile audio files ------------------------------------------------------------------------

def _tone(frames=4000, rate=16000):
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate)).astype(np.float32)


def _encoded(fmt, subtype, extension):
    path = os.path.join(tempfile.mkdtemp(), "base" + extension)
    sf.write(path, _tone(), 16000, format=fmt, subtype=subtype)
    with open(path, "rb") as f:
        return f.read()


BASE_FLAC = _encoded("FLAC", "PCM_16", ".flac")
BASE_OGG = _encoded("OGG", "VORBIS", ".ogg")


@st.composite
def wav_files(draw):
    tag = draw(st.one_of(st.sampled_from([1, 3, 0xFFFE, 2, 6, 7, 0x55]), u16))
    channels = draw(lie(st.integers(1, 2), 16))
    rate = draw(lie(st.sampled_from([8000, 16000, 44100]), 32))
    bits = draw(st.one_of(st.sampled_from([8, 16, 24, 32, 64]), u16))
    if tag == 3 and draw(st.booleans()):  # float data, NaN and infinities included
        values = draw(st.lists(st.floats(width=32), max_size=600))
        payload = struct.pack(f"<{len(values)}f", *values)
    else:
        payload = draw(st.binary(max_size=3000))
    align = (channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", tag, channels, rate, draw(lie(st.just(rate * align % 2**32),
                                                                32)), align, bits)
    if tag == 0xFFFE:
        fmt += struct.pack("<HHI", 22, bits, 0) + draw(st.binary(min_size=16, max_size=16))
    chunks = b"fmt " + struct.pack("<I", draw(lie(st.just(len(fmt)), 32))) + fmt
    if draw(st.booleans()):
        chunks += b"LIST" + struct.pack("<I", draw(u32)) + draw(st.binary(max_size=12))
    declared = draw(st.one_of(st.just(len(payload)), CLAIMS, u32))
    chunks += b"data" + struct.pack("<I", declared) + payload
    size = draw(st.one_of(st.just(4 + len(chunks)), CLAIMS))
    return ".wav", b"RIFF" + struct.pack("<I", size) + b"WAVE" + chunks


def _extended(value):
    """An IEEE 754 80-bit extended float (AIFF's sample rate)."""
    if value == 0:
        return bytes(10)
    exponent = int(np.floor(np.log2(value)))
    mantissa = int(value / 2.0**exponent * 2**63)
    return struct.pack(">HQ", exponent + 16383, mantissa)


@st.composite
def aiff_files(draw):
    channels = draw(lie(st.integers(1, 2), 16))
    frames = draw(st.one_of(st.integers(0, 3000), CLAIMS, u32))
    sample_size = draw(st.one_of(st.sampled_from([8, 16, 24, 32]), u16))
    rate = draw(st.one_of(
        st.sampled_from([8000, 16000, 44100]).map(_extended),
        st.floats(1e-30, 1e30).map(_extended),
        st.binary(min_size=10, max_size=10)))
    comm = struct.pack(">HIH", channels, frames, sample_size) + rate
    payload = draw(st.binary(max_size=3000))
    ssnd = struct.pack(">II", draw(lie(st.just(0), 32)), draw(lie(st.just(0), 32))) + payload
    chunks = (b"COMM" + struct.pack(">I", draw(lie(st.just(18), 32))) + comm +
              b"SSND" + struct.pack(">I", draw(st.one_of(st.just(len(ssnd)), CLAIMS))) + ssnd)
    size = draw(st.one_of(st.just(4 + len(chunks)), CLAIMS))
    return draw(st.sampled_from([".aiff", ".aif"])), (
        b"FORM" + struct.pack(">I", size) + b"AIFF" + chunks)


@st.composite
def flac_files(draw):
    b = bytearray(BASE_FLAC)
    offset = 8 + 10  # "fLaC", the block header, min/max block size, min/max frame size
    rate = draw(lie(st.just(16000), 20))
    channels = draw(lie(st.just(1), 3))
    bits = draw(lie(st.just(16), 5))
    total = draw(st.one_of(st.just(4000), CLAIMS, st.just(2**36 - 1),
                           st.integers(0, 2**36 - 1)))
    packed = (rate << 44) | ((channels - 1) % 8 << 41) | ((bits - 1) % 32 << 36) | total
    b[offset:offset + 8] = packed.to_bytes(8, "big")
    if draw(st.booleans()):
        b[8:18] = draw(st.binary(min_size=10, max_size=10))  # block and frame sizes
    if draw(st.booleans()):
        b[5:8] = draw(st.integers(0, 2**24 - 1)).to_bytes(3, "big")  # STREAMINFO's length
    return ".flac", _damaged(draw, bytes(b), 42)


def _ogg_crc(page):
    crc = 0
    for byte in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _OGG_TABLE[((crc >> 24) & 0xFF) ^ byte]
    return crc


def _ogg_table():
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
        table.append(r & 0xFFFFFFFF)
    return table


_OGG_TABLE = _ogg_table()


def _ogg_pages(data):
    pages, pos = [], 0
    while True:
        start = data.find(b"OggS", pos)
        if start < 0 or start + 27 > len(data):
            return pages
        count = data[start + 26]
        end = start + 27 + count + sum(data[start + 27:start + 27 + count])
        pages.append((start, end))
        pos = end


@st.composite
def ogg_files(draw):
    b = bytearray(BASE_OGG)
    pages = _ogg_pages(BASE_OGG)
    header = b.index(b"\x01vorbis")
    b[header + 11] = draw(lie(st.just(1), 8))  # channels
    b[header + 12:header + 16] = struct.pack("<I", draw(lie(st.just(16000), 32)))  # rate
    if draw(st.booleans()):
        b[header + 28] = draw(u8)  # the two block sizes
    for start, _ in pages[1:]:
        if draw(st.booleans()):  # a granule position: the frame count readers derive
            b[start + 6:start + 14] = struct.pack("<Q", draw(st.one_of(
                CLAIMS, st.integers(0, 2**64 - 1))))
    if draw(st.booleans()):  # checksums made to match, so the lies reach the decoder
        for start, end in pages:
            b[start + 22:start + 26] = bytes(4)
            b[start + 22:start + 26] = struct.pack("<I", _ogg_crc(bytes(b[start:end])))
    return ".ogg", _damaged(draw, bytes(b), 58)


def _damaged(draw, data, keep):
    """``data`` cut short or with a few bytes after the first ``keep`` overwritten, or whole."""
    damage = draw(st.sampled_from(["none", "cut", "flip"]))
    if damage == "cut":
        return data[:draw(st.integers(0, len(data)))]
    if damage == "flip":
        data = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(keep, len(data) - 1))] = draw(u8)
        return bytes(data)
    return data


MAGIC = [b"RIFF\xff\xff\xff\x7fWAVEfmt ", b"fLaC", b"FORM\x00\x00\x10\x00AIFFCOMM", b"OggS\x00\x02",
         b""]


@st.composite
def random_files(draw):
    extension = draw(st.sampled_from([".wav", ".flac", ".aiff", ".ogg", ".aif"]))
    return extension, draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=2000))


HOSTILE = st.one_of(wav_files(), aiff_files(), flac_files(), ogg_files(), random_files(),
                    st.just((".wav", b"")))

# Generous for files of a few kB; a header's claim of 2**31 frames would be 8 GiB.
MEMORY_LIMIT = 32 * 2**20


def _write(directory, name, content):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def _check_decoding(path):
    """Probe and decode ``path``: AudioFileError with a one-line reason (returned), or finite
    audio (its length returned); the peak of Python's allocations (numpy's included) stays
    under MEMORY_LIMIT."""
    tracemalloc.start()
    try:
        for action in (lambda: audio_files.probe_audio_file(path, 16000),
                       lambda: audio_files.decode_audio_file(path, 16000, 1)):
            try:
                result = action()
            except audio_files.AudioFileError as err:
                reason = str(err)
                assert reason and "\n" not in reason and "\r" not in reason
                return reason
            if isinstance(result, np.ndarray):
                assert result.ndim == 2 and result.shape[0] >= 1 and result.shape[1] == 1
                assert np.all(np.isfinite(result))
            else:
                assert result >= 1
        return len(result)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < MEMORY_LIMIT, f"{peak / 2**20:.0f} MiB allocated for {path}"


@fuzz(SOME * 10)
@given(HOSTILE)
def test_hostile_audio_is_skipped_with_one_line_or_decoded_in_bounded_memory(file):
    extension, content = file
    directory = tempfile.mkdtemp()
    try:
        _check_decoding(_write(directory, "fuzzed" + extension, content))
    finally:
        os.remove(os.path.join(directory, "fuzzed" + extension))
        os.rmdir(directory)


def _peak_rss_growth(action):
    """Growth of the process's peak resident memory (bytes) during ``action`` (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets the peak to the current resident size

    def field(name):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(name))

    before = field("VmRSS:")
    action()
    return field("VmHWM:") - before


def _claims_2_31_frames():
    """One file of each format whose header claims 2**31 frames (or more) it does not hold."""
    wav = bytearray(_encoded("WAV", "PCM_16", ".wav"))
    at = wav.index(b"data") + 4
    wav[at:at + 4] = struct.pack("<I", 2**31)
    aiff = bytearray(_encoded("AIFF", "PCM_16", ".aiff"))
    comm = aiff.index(b"COMM")
    aiff[comm + 10:comm + 14] = struct.pack(">I", 2**31)
    flac = [bytearray(BASE_FLAC) for _ in range(2)]
    for b, total in zip(flac, (2**31, 2**36 - 1)):
        b[18:26] = ((int.from_bytes(b[18:26], "big") >> 36 << 36) | total).to_bytes(8, "big")
    ogg = bytearray(BASE_OGG)
    last = _ogg_pages(BASE_OGG)[-1]
    ogg[last[0] + 6:last[0] + 14] = struct.pack("<Q", 2**40)
    ogg[last[0] + 22:last[0] + 26] = bytes(4)
    ogg[last[0] + 22:last[0] + 26] = struct.pack("<I", _ogg_crc(bytes(ogg[last[0]:last[1]])))
    wide = bytearray(_encoded("WAV", "PCM_16", ".wav"))
    at = wide.index(b"fmt ") + 10
    wide[at:at + 2] = struct.pack("<H", 1024)  # 1024 channels
    return {"claim.wav": wav, "claim.aiff": aiff, "claim.flac": flac[0],
            "claim36.flac": flac[1], "claim.ogg": ogg, "wide.wav": wide}


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
def test_a_header_claiming_2_31_frames_allocates_nothing_from_the_claim(tmp_path):
    for name, content in _claims_2_31_frames().items():
        path = _write(str(tmp_path), name, bytes(content))
        outcome = []
        growth = _peak_rss_growth(lambda: outcome.append(_check_decoding(path)))
        assert growth < 64 * 2**20, f"{name}: peak RSS grew {growth / 2**20:.0f} MiB"
        if isinstance(outcome[0], str):  # skipped from the header, or when the data ran out
            assert "header declares" in outcome[0] or "truncated" in outcome[0], outcome[0]
        else:  # or the reader went by the data (AIFF, Ogg): only the frames the file holds
            assert outcome[0] <= 4096, (name, outcome[0])  # Vorbis decodes whole blocks


def _absl_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith("Skipping ")]


def _good_files(directory):
    sf.write(os.path.join(directory, "good1.wav"), _tone(3000), 16000)
    sf.write(os.path.join(directory, "good2.flac"), _tone(5000), 16000)
    return {os.path.join(directory, "good1.wav"), os.path.join(directory, "good2.flac")}


@fuzz(FEW)
@given(st.lists(HOSTILE, min_size=1, max_size=4))
def test_a_folder_with_hostile_files_still_batches_its_good_files(caplog, files):
    caplog.set_level(logging.INFO, logger="absl")
    caplog.clear()
    with tempfile.TemporaryDirectory() as directory:
        good = _good_files(directory)
        hostile = [_write(directory, f"bad{i}{extension}", content)
                   for i, (extension, content) in enumerate(files)]
        report = audio_files.scan_audio_folder(directory, num_workers=2)
        assert good <= set(report.used)
        assert sorted(report.used + [p for p, _ in report.skipped]) == sorted(good | set(hostile))
        lines = _absl_warnings(caplog)
        assert len(lines) == len(report.skipped)
        for path, reason in report.skipped:
            assert sum(line == f"Skipping {path}: {reason}" for line in lines) == 1
        batch = next(iter(data.audio_dataset(directory, slice_len=256, batch_size=2,
                                             repeat=False, seed=0)))
        assert batch.shape == (2, 256, 1) and np.all(np.isfinite(batch.numpy()))


def test_links_loops_fifos_and_odd_names_are_skipped_on_one_line_each(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    good = _good_files(str(folder))
    os.symlink(str(folder), str(folder / "sub" / "back_to_top"))  # a loop
    os.symlink(str(folder / "sub"), str(folder / "sub" / "itself"))  # another loop
    os.symlink(str(folder / "missing.wav"), str(folder / "dangling.wav"))
    os.symlink(str(folder / "loop_b.wav"), str(folder / "loop_a.wav"))
    os.symlink(str(folder / "loop_a.wav"), str(folder / "loop_b.wav"))
    os.mkfifo(str(folder / "pipe.wav"))  # opening it would block for ever
    (folder / "folder.wav").mkdir()
    odd = str(folder / "two\nlines.wav")
    with open(odd, "wb") as f:
        f.write(b"RIFF\x00\x00\x00\x00WAVE")
    (folder / "empty.flac").write_bytes(b"")
    nan = _tone(2000)
    nan[7] = np.inf
    sf.write(str(folder / "inf.wav"), nan, 16000, subtype="FLOAT")
    report = audio_files.scan_audio_folder(str(folder), num_workers=2)
    assert set(report.used) == good
    skipped = dict(report.skipped)
    assert "not a regular file" in skipped[str(folder / "pipe.wav")]
    assert "cannot read" in skipped[str(folder / "dangling.wav")]
    assert "cannot read" in skipped[str(folder / "loop_a.wav")]
    assert "NaN or infinite" in skipped[str(folder / "inf.wav")]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all("\n" not in line for line in lines)
    assert sum(repr(odd) in line for line in lines) == 1
    assert sum("symlink loop" in line for line in lines) == 2
    assert any(str(folder / "sub" / "back_to_top") in line for line in lines)
    batch = next(iter(data.audio_dataset(str(folder), slice_len=256, batch_size=2,
                                         repeat=False, seed=0)))
    assert batch.shape == (2, 256, 1)


def test_a_file_too_short_to_make_one_sample_at_the_rate_is_skipped(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="absl")
    _good_files(str(tmp_path))
    path = str(tmp_path / "one_frame.wav")
    sf.write(path, np.full(1, 0.5, np.float32), 44100)
    assert _check_decoding(path) == "too short: 1 frames at 44100 Hz make no sample at 16000 Hz"
    store = data.load_audio_store(str(tmp_path))
    assert path not in store.paths and len(store.paths) == 2


def test_a_lying_header_is_named_when_the_folder_would_not_fit_in_memory(tmp_path):
    _good_files(str(tmp_path))
    flac = bytearray(BASE_FLAC + bytes(600_000))  # big enough for its claim to be possible
    flac[18:26] = ((int.from_bytes(flac[18:26], "big") >> 36 << 36) | 2**32).to_bytes(8, "big")
    path = _write(str(tmp_path), "liar.flac", bytes(flac))
    with pytest.raises(ValueError, match=f"largest file by its header: {path}"):
        data.audio_dataset(str(tmp_path), slice_len=256, batch_size=2, max_cache_bytes=2**30)


def test_a_damaged_disk_cache_entry_is_decoded_again_not_trusted(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    good = sorted(_good_files(str(folder)))
    cache = str(tmp_path / "cache")
    data.load_audio_store(str(folder), cache=cache)
    for name in os.listdir(cache):  # every entry now claims 2**31 rows it does not hold
        _claim_npy_shape(os.path.join(cache, name), "(2147483648, 1)")
    tracemalloc.start()
    store = data.load_audio_store(str(folder), cache=cache)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert store.paths == good and peak < MEMORY_LIMIT


def _claim_npy_shape(path, shape, descr="<f4"):
    """Rewrites the header of the .npy file ``path`` (version 1) to claim ``shape``."""
    with open(path, "r+b") as f:
        head = f.read(10)
        length = struct.unpack("<H", head[8:10])[0]
        text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
        f.seek(10)
        f.write(text.encode("latin1").ljust(length - 1) + b"\n")
