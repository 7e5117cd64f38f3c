"""Fuzzed inputs: corrupt and hostile files, each a one-line skip or a clear error naming the
file, in bounded memory.

Property tests (hypothesis) build audio files whose headers lie (sizes, rates, channel counts,
chunk lengths, a claim of 2**31 frames), random bytes behind real magic numbers, zero-length and
NaN/inf data, and folders with symlink loops, FIFOs and odd names; the decoder must skip each bad
file with one line naming it, allocate nothing from a header's claim (tracemalloc and the
process's peak RSS), and the pipeline must still batch the good files. The same goes for
``--z_in`` files (``.npy`` and JSON), ``config.json`` / ``training.json``, the web page's
``manifest.json`` and TF1 checkpoints with missing or wrongly shaped variables. Example counts
are kept small (:data:`FEW`, :data:`SOME`) so the module runs in well under a minute;
``WAVEGAN_FUZZ_SCALE`` multiplies them.
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
# WAVEGAN_FUZZ_SCALE=10 runs ten times as many examples (a longer fuzzing session).
SCALE = int(os.environ.get("WAVEGAN_FUZZ_SCALE", "1"))
FEW = 15 * SCALE
SOME = 40 * SCALE


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


# -- z files (--z_in) ---------------------------------------------------------------------------

def _npy_header(descr, shape, fortran=False, version=1, length=None):
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape}, }}"
    text = text.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    size = len(text) if length is None else length
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", size % 2**16) + text
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", size) + text


@st.composite
def z_files(draw):
    kind = draw(st.sampled_from(["array", "header", "bytes", "npz"]))
    if kind == "array":  # a real .npy of any shape and type, NaN and infinities included
        rows, cols = draw(st.integers(0, 3)), draw(st.sampled_from([0, 3, 8, 9]))
        dtype = draw(st.sampled_from(["<f4", "<f8", ">f4", "<i4", "|b1", "<c8", "<U3"]))
        values = draw(st.lists(st.floats(-1e6, 1e6) | st.sampled_from([np.nan, np.inf]),
                               min_size=rows * cols, max_size=rows * cols))
        array = np.array(values, dtype=np.float64).reshape(rows, cols)
        if dtype == "<U3":
            array = array.astype("<U3")
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                array = array.astype(dtype)
        if draw(st.booleans()):
            array = array.reshape(-1)
        buffer = __import__("io").BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()
    if kind == "header":  # a header that lies about the data behind it
        shape = tuple(draw(st.lists(st.one_of(st.integers(-3, 16), st.sampled_from(
            [2**31, 2**40, 2**62])), max_size=3)))
        descr = draw(st.sampled_from(["<f4", "<f8", "|O", "<U3", "|V8", "<c16", "bogus"]))
        header = _npy_header(descr, shape, draw(st.booleans()), draw(st.sampled_from([1, 2, 3])),
                             draw(st.one_of(st.none(), u32)))
        return header + draw(st.binary(max_size=300))
    if kind == "npz":
        buffer = __import__("io").BytesIO()
        np.savez(buffer, z=np.zeros((2, 8), np.float32))
        return buffer.getvalue()
    return draw(st.sampled_from([b"\x93NUMPY", b"PK\x03\x04", b""])) + draw(st.binary(max_size=200))


def _z_outcome(path):
    """``load_z`` + ``check_z`` as generate.py runs them: the z, or the error message."""
    from wavegan_tf.nets.latent import check_z, load_z

    try:
        return check_z(load_z(path), 8, source=f"z file {path!r}")
    except (ValueError, FileNotFoundError) as err:
        return str(err)


@fuzz(SOME * 2)
@given(z_files())
def test_a_hostile_z_file_is_a_clear_error_naming_it_in_bounded_memory(content):
    _check_z_file("z.npy", content)


def _check_z_file(name, content):
    """Reads ``content`` as the z file ``name``: a clear one-line error naming it, or finite
    float32 rows of 8 values, in bounded memory either way."""
    with tempfile.TemporaryDirectory() as directory:
        path = _write(directory, name, content)
        tracemalloc.start()
        try:
            outcome = _z_outcome(path)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < MEMORY_LIMIT, f"{peak / 2**20:.0f} MiB allocated"
        if isinstance(outcome, str):
            assert repr(path) in outcome and "\n" not in outcome, outcome
        else:
            assert outcome.dtype == np.float32 and outcome.shape[1] == 8
            assert outcome.shape[0] >= 1 and np.all(np.isfinite(outcome))


Z_JSON_KEYS = ["format", "version", "latent_dim", "z", "labels"]


@st.composite
def z_json_files(draw):
    """JSON z files (what the drum machine page exports): a document with some of its fields
    replaced by any JSON value or dropped, and its numbers sometimes NaN, infinite, huge,
    booleans or text; any JSON; or broken bytes."""
    kind = draw(st.sampled_from(["document", "json", "bytes"]))
    if kind == "document":
        rows, width = draw(st.integers(0, 3)), draw(st.sampled_from([0, 3, 8, 9]))
        number = st.floats(-1, 1) | st.sampled_from(
            [float("nan"), float("inf"), 1e308, 2**70, 10**400, True, None, "0.5"])
        document = {"format": "wavegan_tf.z", "version": 1, "latent_dim": width,
                    "z": [[draw(number) for _ in range(width)] for _ in range(rows)]}
        if draw(st.booleans()):
            document["labels"] = draw(st.lists(st.integers(-1, 3) | st.text(max_size=3),
                                               min_size=rows, max_size=rows + 1))
        for key in draw(st.sets(st.sampled_from(Z_JSON_KEYS), max_size=2)):
            if draw(st.booleans()):
                document.pop(key, None)
            else:
                document[key] = draw(JSON_VALUES)
        return json.dumps(document).encode()
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    return draw(st.sampled_from([b"{", b"[" * 100000, b"\xff\xfe", b"", b'{"z": [[1e999'])) + \
        draw(st.binary(max_size=100))


@fuzz(SOME)
@given(z_json_files())
def test_a_hostile_json_z_file_is_a_clear_error_naming_it_in_bounded_memory(content):
    _check_z_file("z.json", content)


# -- config.json and training.json ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                               max_size=3),
    max_leaves=6)


def _settings_files(fields):
    names = [f.name for f in fields]
    plausible = st.one_of(st.integers(-2, 70), st.sampled_from([0.0, 0.5, 1e308, 2**63]),
                          st.sampled_from(["wavegan", "specgan", "zeros", "nn", "wgan-gp"]),
                          st.lists(st.text(max_size=3), max_size=3))
    objects = st.dictionaries(st.sampled_from(names + ["bogus_key"]),
                              plausible | JSON_VALUES, max_size=4)
    return st.one_of(objects.map(json.dumps), JSON_VALUES.map(json.dumps),
                     st.binary(max_size=60),
                     st.sampled_from(['{"seed": ' + "9" * 5000 + "}", "[" * 100000,
                                      '{"model_dim": NaN}', '\ufeff{}', '{"model_dim": 1e400}']))


def _settings_outcome(load, directory, path):
    try:
        return load(directory)
    except (ValueError, FileNotFoundError) as err:
        message = str(err)
        assert repr(path) in message and "\n" not in message, message
        return message


@fuzz(SOME * 3)
@given(st.data())
def test_hostile_config_and_training_json_are_clear_errors_naming_the_file(data_strategy):
    import dataclasses

    from wavegan_tf.training.checkpoints import load_config
    from wavegan_tf.training.config import CONFIG_FILENAME, GANConfig
    from wavegan_tf.training.settings import OPTIONS_FILENAME, TrainingOptions

    kind = data_strategy.draw(st.sampled_from(["config", "options"]))
    cls, name, load = ((GANConfig, CONFIG_FILENAME, load_config) if kind == "config"
                       else (TrainingOptions, OPTIONS_FILENAME, TrainingOptions.load))
    content = data_strategy.draw(_settings_files(dataclasses.fields(cls)))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, name)
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        outcome = _settings_outcome(load, directory, path)
        assert isinstance(outcome, (str, cls))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from support import make_loud_train_dir

    return make_loud_train_dir(tmp_path_factory.mktemp("fuzz") / "run")


CONFIG_CHANGES = {
    "model_dim": st.one_of(st.integers(-2, 4), st.sampled_from([10**6, 2**31])),
    "latent_dim": st.one_of(st.integers(-2, 9), st.just(10**9)),
    "kernel_len": st.one_of(st.integers(-1, 6), st.just(10**7)),
    "num_channels": st.one_of(st.integers(-1, 3), st.just(10**6)),
    "slice_len": st.sampled_from([0, 5, 16384, 32768, 65536, 2**40]),
    "sample_rate": st.sampled_from([-1, 0, 8000, 2**40]),
    "upsample": st.sampled_from(["zeros", "nn", "bogus"]),
    "post_proc_filt_len": st.sampled_from([-3, 0, 7, 10**8]),
    "batchnorm": st.booleans(),
    "model": st.sampled_from(["wavegan", "specgan", "x"]),
    "conditional": st.booleans(),
    "class_names": st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=3)),
    "phase_shuffle": st.integers(-1, 3),
}


@fuzz(FEW)
@given(st.dictionaries(st.sampled_from(sorted(CONFIG_CHANGES)), st.just(None), min_size=1,
                       max_size=3).flatmap(lambda keys: st.fixed_dictionaries(
                           {k: CONFIG_CHANGES[k] for k in keys})))
def test_a_run_whose_config_was_edited_loads_or_names_the_file(tiny_run, changes):
    from wavegan_tf.training.checkpoints import load_generator

    path = os.path.join(tiny_run, "config.json")
    with open(path) as f:
        original = f.read()
    try:
        with open(path, "w") as f:
            json.dump(dict(json.loads(original), **changes), f)
        outcome = []

        def load():
            try:
                outcome.append(load_generator(tiny_run))
            except (ValueError, FileNotFoundError) as err:
                outcome.append(str(err))

        growth = _peak_rss_growth(load)
        assert growth < 512 * 2**20, f"peak RSS grew {growth / 2**20:.0f} MiB for {changes}"
        if isinstance(outcome[0], str):
            assert repr(path) in outcome[0] and "\n" not in outcome[0], outcome[0]
    finally:
        with open(path, "w") as f:
            f.write(original)


# -- TF1 checkpoints ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tf1_tensors(tmp_path_factory):
    """Every tensor of an original-style checkpoint after 1 step, with its optimizer slots."""
    import tensorflow as tf
    from test_convert_tf1 import write_original_checkpoint

    prefix, _ = write_original_checkpoint(str(tmp_path_factory.mktemp("tf1") / "old"), steps=1)
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def _save_tf1(prefix, tensors):
    """Writes ``tensors`` as a name-based (TF1 Saver) checkpoint at ``prefix``."""
    import tensorflow as tf

    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[name]) for name in names])


MUTATIONS = st.sampled_from(["drop", "reshape", "dtype", "nonfinite", "extra", "step"])


@fuzz(FEW)
@given(st.data())
def test_a_tf1_checkpoint_with_missing_or_wrong_variables_is_a_clear_error(tf1_tensors,
                                                                           data_strategy):
    from wavegan_tf.serving.tf1_checkpoint import convert_checkpoint

    draw = data_strategy.draw
    tensors = dict(tf1_tensors)
    names = sorted(tensors)
    for mutation in draw(st.lists(MUTATIONS, min_size=1, max_size=3)):
        name = draw(st.sampled_from(names))
        if mutation == "drop":
            tensors.pop(name, None)
        elif mutation == "reshape" and name in tensors:
            shape = list(np.shape(tensors[name])) or [1]
            axis = draw(st.integers(0, len(shape) - 1))
            shape[axis] = draw(st.integers(1, 5))
            if draw(st.booleans()):
                shape.append(draw(st.integers(1, 3)))
            tensors[name] = np.zeros(shape, np.float32)
        elif mutation == "dtype" and name in tensors:
            kind = draw(st.sampled_from(["int32", "float64", "bool", "string"]))
            value = np.asarray(tensors[name])
            tensors[name] = (np.full(value.shape, b"x", object) if kind == "string"
                             else np.zeros(value.shape, kind) if value.dtype == object
                             else value.astype(kind))
        elif mutation == "nonfinite" and name in tensors and np.size(tensors[name]) and \
                np.asarray(tensors[name]).dtype != object:
            value = np.array(tensors[name], np.float32)
            value.reshape(-1)[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            tensors[name] = value
        elif mutation == "extra":
            tensors[draw(st.sampled_from(["G/extra/kernel", "D/downconv_9/conv1d/bias",
                                          "unrelated"]))] = np.zeros(3, np.float32)
        elif mutation == "step":
            tensors["global_step"] = draw(st.sampled_from([
                np.array([1, 2], np.int64), np.array(b"two", object), np.array(-5, np.int64),
                np.array(2**62, np.int64), np.array(1.5, np.float32)]))
    with tempfile.TemporaryDirectory() as directory:
        prefix = os.path.join(directory, "model.ckpt-1")
        _save_tf1(prefix, tensors)
        out = os.path.join(directory, "new")
        try:
            result = convert_checkpoint(prefix, out, overrides={
                name: str(value) for name, value in (
                    ("wavegan_latent_dim", 8), ("wavegan_dim", 2), ("wavegan_kernel_len", 5),
                    ("wavegan_disc_nupdates", 2), ("train_batch_size", 2))})
        except (ValueError, FileNotFoundError) as err:
            message = str(err)
            assert repr(prefix) in message and "\n" not in message, message
            assert not os.path.exists(out) or os.listdir(out) == []
        else:
            assert result.step >= 0 and os.path.isfile(os.path.join(out, "config.json"))


# -- model cards of pretrained models -------------------------------------------------------------

@pytest.fixture(scope="module")
def pretrained_root(tiny_run, tmp_path_factory):
    from wavegan_tf.serving import pretrained
    from wavegan_tf.training.checkpoints import load_generator

    root = str(tmp_path_factory.mktemp("pretrained"))
    config, generator, step = load_generator(tiny_run)
    pretrained.write("tiny", config, generator, step, {"description": "fuzzed"}, root=root)
    return root


@fuzz(FEW)
@given(st.one_of(
    st.dictionaries(st.sampled_from(["steps", "model", "model_dim", "minutes", "scores",
                                     "slice_len", "description"]),
                    st.one_of(st.integers(-3, 10), st.text(max_size=3), JSON_VALUES),
                    max_size=4).map(json.dumps),
    JSON_VALUES.map(json.dumps), st.binary(max_size=40)))
def test_a_hostile_model_card_is_a_clear_error_naming_it(pretrained_root, content):
    from wavegan_tf.serving import pretrained

    path = os.path.join(pretrained_root, "tiny", pretrained.CARD_FILENAME)
    with open(path) as f:
        original = f.read()
    try:
        with open(path, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        for action in (lambda: pretrained.describe("tiny", root=pretrained_root),
                       lambda: pretrained.load("tiny", root=pretrained_root)):
            try:
                action()
            except ValueError as err:
                assert repr(path) in str(err) and "\n" not in str(err), str(err)
    finally:
        with open(path, "w") as f:
            f.write(original)


# -- the web page's manifest.json ---------------------------------------------------------------

# Loads each site folder given on the command line with the page's runtime (web/page/
# wavegan_runtime.js) under Node, with TensorFlow.js stubbed and fetch reading files; prints
# one JSON line per folder: {"ok": true} or {"error": message}.
NODE_HARNESS = r"""
const fs = require('fs'), vm = require('vm');
const [runtimePath, ...sites] = process.argv.slice(1);
global.window = {tf: {tensor: (values, shape) => ({shape: shape})}};
global.fetch = async (url) => {
  let data;
  try { data = fs.readFileSync(url); } catch (err) { return {ok: false, status: 404}; }
  return {ok: true, status: 200, json: async () => JSON.parse(data.toString('utf8')),
          arrayBuffer: async () => data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)};
};
vm.runInThisContext(fs.readFileSync(runtimePath, 'utf8'));
(async () => {
  for (const site of sites) {
    try {
      await window.WaveGANRuntime.load(site + '/');
      console.log(JSON.stringify({ok: true}));
    } catch (err) {
      console.log(JSON.stringify({error: String(err && err.message || err)}));
    }
  }
})();
"""
NODE = __import__("shutil").which("node")


@pytest.fixture(scope="module")
def web_site(tiny_run):
    """(manifest, weights bytes) of the tiny run's page."""
    from wavegan_tf.serving.export import load_keras_generator
    from wavegan_tf.serving.web_export import site_manifest

    config, generator, step = load_keras_generator(tiny_run)
    manifest, arrays = site_manifest(config, generator, step, 0, tiny_run)
    return manifest, b"".join(array.tobytes() for array in arrays)


def _manifest_mutation(draw, manifest, weights):
    """A hostile change of the site: a lying field, a missing one, a cut weights file."""
    manifest = json.loads(json.dumps(manifest))
    kind = draw(st.sampled_from(["top", "layer", "weight", "delete", "cut", "bytes"]))
    lying = st.one_of(JSON_VALUES, st.sampled_from([-4, 3, 2**40, 2**53 + 1, 1.5, "x", None,
                                                    [2**31, 2**31], ["x"], "../../etc/passwd"]))
    if kind == "top":
        manifest[draw(st.sampled_from(["latent_dim", "slice_len", "num_channels", "layers",
                                       "output", "weights_file", "class_names"]))] = draw(lying)
    elif kind in ("layer", "weight", "delete"):
        layer = draw(st.sampled_from(manifest["layers"]))
        target = layer
        if kind == "weight" and layer["weights"]:
            target = draw(st.sampled_from(layer["weights"]))
        key = draw(st.sampled_from(sorted(target)))
        if kind == "delete":
            del target[key]
        else:
            target[key] = draw(lying)
    elif kind == "cut":
        weights = weights[:draw(st.integers(0, len(weights)))]
    if kind == "bytes":
        return draw(st.binary(max_size=50)), weights
    return json.dumps(manifest).encode(), weights


@pytest.mark.skipif(NODE is None, reason="needs Node.js (installed for the web page's runtime)")
@fuzz(FEW)
@given(st.data())
def test_a_hostile_web_manifest_is_an_error_naming_the_file(web_site, data_strategy):
    manifest, weights = web_site
    with tempfile.TemporaryDirectory() as directory:
        sites = []
        for i in range(8):
            site = os.path.join(directory, f"site{i}")
            os.mkdir(site)
            text, data_bytes = _manifest_mutation(data_strategy.draw, manifest, weights)
            _write(site, "manifest.json", text)
            _write(site, "weights.bin", data_bytes)
            sites.append(site)
        done = subprocess.run([NODE, "-e", NODE_HARNESS, os.path.join(ROOT, "web", "page",
                                                                      "wavegan_runtime.js"),
                               *sites], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        results = [json.loads(line) for line in done.stdout.split("\n") if line]
        assert len(results) == len(sites)
        for site, result in zip(sites, results):
            if "error" in result:  # naming the manifest, or the weights file it names
                assert site + "/" in result["error"], result["error"]
                assert "Cannot read properties" not in result["error"], result["error"]


@pytest.mark.skipif(NODE is None, reason="needs Node.js (installed for the web page's runtime)")
def test_the_untouched_web_manifest_loads(web_site, tmp_path):
    manifest, weights = web_site
    _write(str(tmp_path), "manifest.json", json.dumps(manifest).encode())
    _write(str(tmp_path), "weights.bin", weights)
    done = subprocess.run([NODE, "-e", NODE_HARNESS, os.path.join(ROOT, "web", "page",
                                                                  "wavegan_runtime.js"),
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == '{"ok":true}', done.stdout + done.stderr


# -- the programs' one-line errors ----------------------------------------------------------------

def test_generate_names_a_bad_z_file_or_config_in_one_error_line(tiny_run, tmp_path, capsys):
    import shutil

    from support import run_generate_main

    run = str(tmp_path / "run")
    shutil.copytree(tiny_run, run)
    out = str(tmp_path / "out")
    bad_z = _write(str(tmp_path), "z.npy", _npy_header("<f4", (2**31, 8)) + bytes(64))
    assert run_generate_main(f"--model={run}", f"--out_dir={out}", f"--z_in={bad_z}") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: cannot read z file ")
    assert repr(bad_z) in error[0]
    with open(os.path.join(run, "config.json"), "w") as f:
        f.write('{"model_dim": "wide"}')
    assert run_generate_main(f"--model={run}", f"--out_dir={out}") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"error: cannot use run configuration "
                     f"{os.path.join(run, 'config.json')!r}: model_dim must be an integer, "
                     "got 'wide'"]
    assert not os.path.exists(out) or os.listdir(out) == []
