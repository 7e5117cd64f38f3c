"""Finding and decoding the audio files of a folder, and reporting the ones that cannot be used.

Training data are whatever folder of sounds a user has, so one bad file must not stop a run: a
file that cannot be used is skipped with one warning line naming it and the reason, and a summary
``N files used, M skipped`` follows. Decoding goes through libsndfile (``soundfile``), resampling
through soxr.

Headers are not trusted with memory: a file whose header claims more frames than its size can
hold, a sample rate outside :data:`MIN_FILE_RATE`..:data:`MAX_FILE_RATE` or anything but a
regular file is skipped from its header, and decoding reads in blocks of bounded size, so memory
follows the data actually read, never a header's claim. Folder links that lead back to a folder
already scanned (symlink loops) are skipped with a warning.
"""

import concurrent.futures
import dataclasses
import os
import re
import stat

import numpy as np
import soundfile as sf
import soxr
from absl import logging

_BASE_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif")

# libsndfile notes a WAV whose data chunk is longer than the file as "data : 32000 (should be 16)".
_DATA_LENGTH_NOTE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Writers that stream to a pipe cannot fill in the data length and leave one of these instead.
_UNKNOWN_DATA_LENGTHS = (0, 0xFFFFFFFF, 0x7FFFFFFF)
# Sample rates a file may declare: outside this range the header is damaged or not audio (a
# rate of 1 Hz would make resampling to 16 kHz 16000 times longer than the data).
MIN_FILE_RATE = 1000
MAX_FILE_RATE = 768000
# Bytes per frame and channel of the uncompressed subtypes in plain containers: a header that
# claims more frames than the file's size holds is lying. Compressed subtypes get _MAX_FRAMES_PER_BYTE (FLAC's
# densest frames of silence hold about 6500 frames per byte).
_BYTES_PER_SAMPLE = {"PCM_S8": 1, "PCM_U8": 1, "ULAW": 1, "ALAW": 1, "PCM_16": 2, "PCM_24": 3,
                     "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}
_MAX_FRAMES_PER_BYTE = 8192
# Containers that store those subtypes as they are (FLAC, Ogg and MP3 name a subtype too).
_PLAIN_FORMATS = ("WAV", "WAVEX", "RF64", "W64", "AIFF", "AU", "CAF", "RAW")
# Most float32 samples (frames x channels) one block of a decode reads: 4 MiB.
_DECODE_BLOCK_SAMPLES = 2**20


def audio_extensions():
    """File extensions read as audio (lower case); mp3 only where libsndfile can decode it."""
    if "MP3" in sf.available_formats():
        return _BASE_EXTENSIONS + (".mp3",)
    return _BASE_EXTENSIONS


class AudioFileError(Exception):
    """A file that cannot be used as training audio; the message is the reason."""


@dataclasses.dataclass
class ScanReport:
    """What a scan of a data folder found.

    Attributes:
      data_dir: the folder scanned.
      used: paths of the files that decoded cleanly, sorted.
      skipped: ``(path, reason)`` for every audio-named file that could not be used.
      ignored: number of files whose extension is not an audio extension.
      lengths: samples per used file at the target sample rate (same order as ``used``).
      audio: decoded ``[samples, channels]`` float32 arrays when the scan was asked to keep them.
    """

    data_dir: str
    used: list
    skipped: list
    ignored: int
    lengths: list
    audio: list = dataclasses.field(default=None, repr=False)

    def summary(self):
        return f"{len(self.used)} files used, {len(self.skipped)} skipped"


def find_audio_files(data_dir):
    """Audio files under ``data_dir`` (recursive, sorted) and the number of other files."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(
            f"data folder {data_dir!r} does not exist (looked for audio files with extensions "
            f"{', '.join(audio_extensions())})")
    extensions = audio_extensions()
    found, ignored = [], 0
    seen = {_folder_id(data_dir)}
    for root, dirs, files in os.walk(data_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and _first_visit(os.path.join(root, d), seen))
        for name in files:
            if name.startswith("."):
                continue
            if os.path.splitext(name)[1].lower() in extensions:
                found.append(os.path.join(root, name))
            else:
                ignored += 1
    return sorted(found), ignored


def _folder_id(path):
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _first_visit(path, seen):
    """False (with a warning) for a folder reached before by another path: a symlink loop or a
    second link to the same folder, whose files would otherwise be read again and again."""
    ident = _folder_id(path)
    if ident is None:
        return False
    if ident in seen:
        logging.warning("Skipping %s: a link to a folder already scanned (%s), e.g. a symlink "
                        "loop", _quoted(path), _quoted(os.path.realpath(path)))
        return False
    seen.add(ident)
    return True


def probe_audio_file(path, sample_rate):
    """Samples of ``path`` once resampled to ``sample_rate``, from its header alone.

    Raises :class:`AudioFileError` for a file that is not a regular file, cannot be read, is
    empty or truncated, or whose header claims a sample rate or more frames than it can hold.
    """
    size = _regular_file_size(path)
    try:
        info = sf.info(path)
    except Exception as error:  # libsndfile reports every kind of bad file; the reason is kept
        raise AudioFileError(_describe(error)) from None
    if info.frames <= 0:
        raise AudioFileError("no audio frames (empty file)")
    _check_not_truncated(info)
    _check_header_claims(info, size)
    return _resampled_length(info.frames, info.samplerate, sample_rate)


def _regular_file_size(path):
    """The size of ``path``; AudioFileError unless it is a readable regular file (a FIFO or a
    device named like audio would block or never end)."""
    try:
        info = os.stat(path)
    except OSError as error:
        raise AudioFileError(f"cannot read ({error.strerror or error})") from None
    if not stat.S_ISREG(info.st_mode):
        raise AudioFileError("not a regular file (a device, FIFO, socket or folder)")
    return info.st_size


def _check_header_claims(info, size):
    """AudioFileError when the header's sample rate or frame count cannot be true."""
    if not MIN_FILE_RATE <= info.samplerate <= MAX_FILE_RATE:
        raise AudioFileError(f"header declares a sample rate of {info.samplerate} Hz, outside "
                             f"{MIN_FILE_RATE}..{MAX_FILE_RATE} Hz: damaged or not audio")
    per_sample = _BYTES_PER_SAMPLE.get(info.subtype) if info.format in _PLAIN_FORMATS else None
    most = size // (per_sample * info.channels) if per_sample else size * _MAX_FRAMES_PER_BYTE
    if info.frames > most:
        raise AudioFileError(f"header declares {info.frames} frames of {info.channels} channels, "
                             f"more than a file of {size} bytes holds: damaged header")


def decode_audio_file(path, sample_rate, num_channels):
    """``[samples, num_channels]`` float32 audio of ``path`` at ``sample_rate``.

    Integer formats decode to [-1, 1). Stereo (or more) is averaged to mono when one channel is
    asked for; mono is duplicated to fill more channels; otherwise the first ``num_channels``
    channels are kept. Raises :class:`AudioFileError` for anything unusable.
    """
    size = _regular_file_size(path)
    blocks = []
    try:
        with sf.SoundFile(path) as f:
            file_rate = f.samplerate
            _check_not_truncated(f)
            _check_header_claims(f, size)
            claimed = f.frames
            audio = _read_blocks(f, blocks)
    except AudioFileError:
        raise
    except Exception as error:  # libsndfile reports every kind of bad file; the reason is kept
        read = sum(len(b) for b in blocks)
        if read:
            raise AudioFileError(f"truncated or corrupt: header declares {claimed} frames, "
                                 f"decoding failed after {read} ({_reason(error)})") from None
        raise AudioFileError(_describe(error)) from None
    if audio.shape[0] == 0:
        raise AudioFileError("no audio frames (empty file)")
    if not np.all(np.isfinite(audio)):
        raise AudioFileError("contains NaN or infinite samples")
    audio = _match_channels(audio, num_channels)
    if file_rate != sample_rate:
        frames = audio.shape[0]
        audio = soxr.resample(audio, file_rate, sample_rate, quality="HQ")
        if audio.shape[0] == 0:
            raise AudioFileError(f"too short: {frames} frames at {file_rate} Hz make no sample "
                                 f"at {sample_rate} Hz")
    return np.ascontiguousarray(audio, dtype=np.float32)


def _read_blocks(f, blocks):
    """All frames of the open SoundFile ``f`` as float32 ``[frames, channels]``, read in blocks
    of at most :data:`_DECODE_BLOCK_SAMPLES` samples (appended to ``blocks`` as they come), so
    that memory follows the data, not the header (soundfile's whole-file read allocates the
    header's frame count up front)."""
    frames = max(1, _DECODE_BLOCK_SAMPLES // max(1, f.channels))
    while True:
        block = f.read(frames, dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        blocks.append(block)
        if len(block) < frames:
            break
    if not blocks:
        return np.zeros((0, f.channels), np.float32)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)


def scan_audio_folder(data_dir, sample_rate=16000, num_channels=1, decode=True, keep_audio=False,
                      load=None, max_audio_bytes=None, num_workers=None):
    """Find the audio under ``data_dir``, check every file and log what will be used.

    Every file's header is read; with ``decode`` (the default) every file is also decoded, which
    is the only way to find truncated data or NaN samples. One warning line is logged per skipped
    file, then the summary ``N files used, M skipped``.

    Args:
      data_dir: folder searched recursively.
      sample_rate, num_channels: target format (decides ``lengths`` and the decoded arrays).
      decode: decode every file (True) or only read headers (False).
      keep_audio: keep the decoded arrays in ``report.audio``.
      load: ``load(path) -> array`` used instead of :func:`decode_audio_file` (e.g. a cache).
      max_audio_bytes: if the decoded audio of the usable files would exceed this many bytes a
        ValueError is raised before decoding.
      num_workers: decoding threads (libsndfile and soxr release the GIL); default: CPU count.

    Raises:
      FileNotFoundError: ``data_dir`` does not exist.
      ValueError: no usable audio, or the audio would exceed ``max_audio_bytes``.
    """
    paths, ignored = find_audio_files(data_dir)
    workers = num_workers or os.cpu_count() or 1
    skipped = []
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        probed = _try_each(pool, lambda p: probe_audio_file(p, sample_rate), paths, skipped)
        if max_audio_bytes is not None:
            _check_fits(data_dir, probed, num_channels, max_audio_bytes)
        used, lengths, audio = [p for p, _ in probed], [n for _, n in probed], None
        if decode:
            load = load or (lambda p: decode_audio_file(p, sample_rate, num_channels))
            decoded = _try_each(pool, load, used, skipped)
            used = [p for p, _ in decoded]
            lengths = [a.shape[0] for _, a in decoded]
            audio = [a for _, a in decoded] if keep_audio else None
    skipped.sort()
    report = ScanReport(data_dir, used, skipped, ignored, lengths, audio)
    _log_report(report)
    if not used:
        raise ValueError(
            f"no usable audio in {data_dir!r} (looked for extensions "
            f"{', '.join(audio_extensions())} recursively; {len(skipped)} skipped, "
            f"{ignored} other files ignored)")
    return report


def _try_each(pool, fn, paths, skipped):
    """``[(path, fn(path))]`` for the paths where ``fn`` succeeds; failures go to ``skipped``."""
    def attempt(path):
        try:
            return fn(path), None
        except AudioFileError as error:
            return None, str(error)

    results = []
    for path, (value, reason) in zip(paths, pool.map(attempt, paths)):
        if reason is None:
            results.append((path, value))
        else:
            skipped.append((path, reason))
    return results


def _check_fits(data_dir, probed, num_channels, max_audio_bytes):
    needed = sum(n for _, n in probed) * num_channels * 4
    if needed > max_audio_bytes:
        largest = max(probed, key=lambda item: item[1])
        raise ValueError(
            f"the decoded audio of {data_dir!r} needs {needed / 2**30:.2f} GiB ({needed} bytes) "
            f"of memory, more than max_cache_bytes={max_audio_bytes} (largest file by its "
            f"header: {_quoted(largest[0])}, {largest[1]} samples); raise max_cache_bytes "
            f"(an audio_dataset argument), or use less audio or a lower sample rate")


def _log_report(report):
    for path, reason in report.skipped:
        logging.warning("Skipping %s: %s", _quoted(path), _one_line(reason))
    logging.info("%s: %s (%d non-audio files ignored)", report.data_dir, report.summary(),
                 report.ignored)


def _check_not_truncated(info):
    """Raise if libsndfile noted that a WAV's data chunk runs past the end of the file."""
    note = _DATA_LENGTH_NOTE.search(info.extra_info)
    if note:
        declared, present = int(note.group(1)), int(note.group(2))
        if declared > present and declared not in _UNKNOWN_DATA_LENGTHS:
            raise AudioFileError(
                f"truncated: header declares {declared} bytes of audio data, file holds {present}")


def _match_channels(audio, num_channels):
    have = audio.shape[1]
    if have == num_channels:
        return audio
    if num_channels == 1:
        return audio.mean(axis=1, keepdims=True)
    if have == 1:
        return np.repeat(audio, num_channels, axis=1)
    if have > num_channels:
        return audio[:, :num_channels]
    raise AudioFileError(f"has {have} channels, cannot make {num_channels} from them")


def _resampled_length(frames, file_rate, sample_rate):
    return int(frames) if file_rate == sample_rate else int(
        np.ceil(frames * sample_rate / file_rate))


def _reason(error):
    return _one_line(str(error).strip()) or type(error).__name__


def _describe(error):
    return f"cannot decode ({_reason(error)})"


def _one_line(text):
    """``text`` on one line: printable text as it is (runs of whitespace made one space when
    it holds line breaks or tabs); anything holding other control characters in Python's quoted
    form. A skip message therefore always takes one line, whatever a file is named."""
    text = str(text)
    if text.isprintable():
        return text
    flat = " ".join(text.split())
    return flat if flat.isprintable() else repr(text)


def _quoted(path):
    """A path as it is when printable, else in Python's quoted form (a name may hold a line
    break)."""
    return path if str(path).isprintable() else repr(path)
