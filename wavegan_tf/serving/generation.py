"""Writing a generator's clips as WAV files: one file a clip, all of them in one track, a folder
a class for a conditional model, the z used and a PNG sheet of the first clips.

Every file is written atomically, and every output path is checked (writable, not existing
unless overwriting) before the first clip is generated, so a refused call writes nothing.
"""

import glob
import os

import numpy as np

from wavegan_tf.audio import plots, wav_io
from wavegan_tf.files.directories import ensure_writable_dir
from wavegan_tf.files.locks import exclusive_lock
from wavegan_tf.nets.latent import interpolate_z, sample_z, save_z
from wavegan_tf.serving.loading import DEFAULT_BATCH_SIZE

DEFAULT_NUM_CLIPS = 16
CLIP_FILENAME = "wavegan_{index:0{width}d}.wav"
CONCAT_FILENAME = "wavegan_all.wav"
# Held in the output folder while clips are checked and written (deleted afterwards).
WRITERS_LOCK_FILENAME = ".generate.lock"


def choose_z(latent_dim, *, n=None, seed=0, interpolate=0):
    """Seeded z: ``interpolate`` clips between two seeds' z if set, else ``n`` random rows."""
    if interpolate:
        return interpolate_z(interpolate, latent_dim, seed)
    return sample_z(DEFAULT_NUM_CLIPS if n is None else n, latent_dim, seed)


def clip_paths(out_dir, n):
    """``out_dir/wavegan_0000.wav`` ... for ``n`` clips (wider numbers past 10000 clips)."""
    width = max(4, len(str(n - 1)))
    return [os.path.join(out_dir, CLIP_FILENAME.format(index=i, width=width)) for i in range(n)]


def check_not_existing(paths):
    """Raises FileExistsError naming the first of ``paths`` that already exists."""
    for path in paths:
        if os.path.lexists(path):
            raise FileExistsError(f"{path!r} already exists; pass --overwrite to replace "
                                  "existing files")


def write_clips(model, out_dir, z, *, label=None, labels=None, per_class=False,
                batch_size=DEFAULT_BATCH_SIZE, z_out=None, concat=False, overwrite=False,
                plot=None, plot_data_dir=None, seed=0):
    """Generates a clip for every row of ``z`` with ``model`` (a
    :class:`~wavegan_tf.serving.loading.GenerationModel`) and writes them as 16-bit WAVs.

    Writes ``out_dir/wavegan_0000.wav`` ..., with ``concat`` also ``out_dir/wavegan_all.wav``,
    and with ``z_out`` (a ``.npy`` path) ``z``. A conditional model writes every clip of
    ``label`` (a class name or index), or of ``labels`` (a class index per row of z), or with
    ``per_class`` the clips of every class, from the same z, into ``out_dir/<class>/``. With
    ``plot`` (a ``.png`` path) the first clips written are drawn there, beside as many real
    clips of the folder ``plot_data_dir`` (cut at random, seeded by ``seed``) when it is given.
    Nothing is overwritten unless ``overwrite``. Returns the paths written.
    """
    # Writers of one folder take turns, so that the second finds the first's files (and
    # refuses, unless overwriting) instead of both passing the check and mixing their clips.
    ensure_writable_dir(out_dir)
    with exclusive_lock(os.path.join(out_dir, WRITERS_LOCK_FILENAME)):
        _remove_killed_writers_files(out_dir, plot, z_out)
        return _write_clips(model, out_dir, z, label=label, labels=labels, per_class=per_class,
                            batch_size=batch_size, z_out=z_out, concat=concat,
                            overwrite=overwrite, plot=plot, plot_data_dir=plot_data_dir,
                            seed=seed)


def _remove_killed_writers_files(out_dir, plot, z_out):
    """Deletes what writers killed in ``out_dir`` left: the temporary files of their clips, and
    of the sheet or z file when those are in ``out_dir``. Only while holding its lock (none of
    them can be in use then)."""
    names = ["wavegan_*"] + [glob.escape(os.path.basename(path)) for path in (plot, z_out)
                             if path and os.path.dirname(os.path.realpath(path))
                             == os.path.realpath(out_dir)]
    for name in names:
        for stale in glob.glob(os.path.join(glob.escape(out_dir), "**", f".{name}.tmp-*"),
                               recursive=True):
            os.remove(stale)


def _write_clips(model, out_dir, z, *, label, labels, per_class, batch_size, z_out, concat,
                 overwrite, plot, plot_data_dir, seed):
    if per_class:
        jobs = [(os.path.join(out_dir, name), index)
                for index, name in enumerate(model.class_names)]
    elif labels is not None:
        jobs = [(out_dir, labels)]
    else:
        jobs = [(out_dir, None if label is None else model.label_index(label))]
    outputs = [prepare_outputs(folder, len(z), concat=concat, z_out=z_out, overwrite=overwrite)
               for folder, _ in jobs]
    if plot is not None:
        prepare_plot(plot, overwrite=overwrite)
    written, plotted = [], []
    for (_, labels), (wav_paths, concat_path) in zip(jobs, outputs):
        audio = model.generate(z, batch_size=batch_size, labels=labels)
        plotted.append(audio)
        for path, clip in zip(wav_paths, audio):
            wav_io.write_wav(path, clip, model.sample_rate)
        written += wav_paths
        if concat_path is not None:
            written.append(wav_io.write_wav(concat_path,
                                            wav_io.concatenate_clips(audio, model.sample_rate),
                                            model.sample_rate))
    if z_out is not None:
        written.append(save_z(z_out, z))
    if plot is not None:
        title = f"{os.path.basename(os.path.normpath(model.source))}, step {model.step}"
        written.append(plots.plot_sheet_beside_data(plot, np.concatenate(plotted),
                                                    model.sample_rate, plot_data_dir, seed,
                                                    title=title))
    return written


def prepare_plot(plot, *, overwrite):
    """Checks the folder of the ``plot`` file is writable and, unless ``overwrite``, that the
    file does not exist."""
    ensure_writable_dir(os.path.dirname(os.path.abspath(plot)))
    if not overwrite:
        check_not_existing([plot])


def prepare_outputs(out_dir, count, *, concat, z_out, overwrite):
    """Checks the output folders are writable and, unless ``overwrite``, that no file exists.

    Returns the clip paths and the concatenated file's path (None without ``concat``).
    """
    ensure_writable_dir(out_dir)
    if z_out is not None:
        ensure_writable_dir(os.path.dirname(os.path.abspath(z_out)))
    wav_paths = clip_paths(out_dir, count)
    concat_path = os.path.join(out_dir, CONCAT_FILENAME) if concat else None
    if not overwrite:
        check_not_existing(wav_paths + [p for p in (concat_path, z_out) if p is not None])
    return wav_paths, concat_path
