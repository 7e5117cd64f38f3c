"""What ``generate.py`` does with its WAV flags: checks their combinations, loads the model,
chooses z and writes the clips. It defines no absl flags, so tests and notebooks import it."""

import os

from wavegan_tf.nets.latent import check_z, load_z_and_labels
from wavegan_tf.serving.generation import choose_z, write_clips
from wavegan_tf.serving.loading import (DEFAULT_BATCH_SIZE, load_model_for_generation,
                                        z_file_labels)

# Flags of generate.py that shape WAV output only; --web and --tflite write other forms.
WAV_ONLY_FLAGS = ("n", "out_dir", "batch_size", "z_in", "z_out", "interpolate", "concat",
                  "label", "per_class", "plot", "plot_data_dir")


def run_generation(model, out_dir, *, n=None, seed=0, batch_size=DEFAULT_BATCH_SIZE, z_in=None,
                   z_out=None, interpolate=0, concat=False, overwrite=False, label=None,
                   per_class=None, plot=None, plot_data_dir=None):
    """Generates clips with the model at path ``model`` and writes them as 16-bit WAVs.

    The arguments are those of ``generate.py``. z comes from the z file ``z_in`` (a ``.npy``
    ``[n, latent_dim]`` or a JSON z file, see :mod:`wavegan_tf.nets.latent`), from
    ``interpolate`` clips between the z of ``seed`` and ``seed + 1``, or else from ``n``
    (default 16) random rows for ``seed``. A conditional model needs ``label`` (every clip of
    that class), ``per_class`` (that many clips of every class, the same z for each) or a JSON
    z file with labels (each clip of its row's class; ``label`` overrides them). The files are
    those of :func:`wavegan_tf.serving.generation.write_clips`; returns the paths written.
    """
    check_options(n=n, seed=seed, batch_size=batch_size, z_in=z_in, interpolate=interpolate,
                  label=label, per_class=per_class, plot=plot, plot_data_dir=plot_data_dir)
    generator = load_model_for_generation(model)
    labels = None
    if z_in is not None:
        z, labels = read_z_file(z_in, generator, with_labels=label is None)
    else:
        z = choose_z(generator.latent_dim, n=per_class or n, seed=seed, interpolate=interpolate)
    check_conditioning_options(generator, label, per_class, labels)
    return write_clips(generator, out_dir, z, label=label, labels=labels,
                       per_class=per_class is not None, batch_size=batch_size, z_out=z_out,
                       concat=concat, overwrite=overwrite, plot=plot,
                       plot_data_dir=plot_data_dir, seed=seed)


def read_z_file(path, generator, with_labels=True):
    """The z of the z file ``path`` checked against ``generator``, and the class indices its
    labels name (None when it names none, or without ``with_labels``: --label overrides them,
    so they are not resolved then)."""
    z, labels = load_z_and_labels(path)
    z = check_z(z, generator.latent_dim, source=f"z file {path!r}")
    if not with_labels:
        return z, None
    return z, z_file_labels(path, labels, generator.class_names, generator.source)


def check_options(*, n, seed, batch_size, z_in, interpolate, label=None, per_class=None,
                  plot=None, plot_data_dir=None):
    """Rejects contradictory or out-of-range generation options with a clear message."""
    if plot_data_dir is not None and plot is None:
        raise ValueError("--plot_data_dir is used only with --plot (the sheet it adds real "
                         "clips to)")
    if plot is not None and not plot.lower().endswith(".png"):
        raise ValueError(f"--plot must name a .png file, got {plot!r}")
    if plot_data_dir is not None and not os.path.isdir(plot_data_dir):
        raise FileNotFoundError(f"--plot_data_dir {plot_data_dir!r} is not a folder")
    if z_in is not None and interpolate:
        raise ValueError("--z_in and --interpolate are exclusive: give one source of z")
    if n is not None and (z_in is not None or interpolate):
        raise ValueError("--n is not used with --z_in or --interpolate (they fix the count)")
    if label is not None and per_class is not None:
        raise ValueError("--label and --per_class are exclusive: one class, or every class")
    if per_class is not None and n is not None:
        raise ValueError("--n is not used with --per_class (it is the count per class)")
    if per_class is not None and (z_in is not None or interpolate):
        raise ValueError("--per_class is not used with --z_in or --interpolate (they fix the "
                         "count); give --label to write them for one class")
    if per_class is not None and per_class < 1:
        raise ValueError(f"--per_class must be >= 1, got {per_class}")
    if n is not None and n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if interpolate != 0 and interpolate < 2:
        raise ValueError(f"--interpolate needs at least 2 clips (0 turns it off), "
                         f"got {interpolate}")
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")


def check_conditioning_options(generator, label, per_class, labels=None):
    """--label/--per_class only for a conditional model, which needs one of them or the
    per-clip class indices ``labels`` of a JSON z file."""
    if not generator.conditional:
        given = [name for name, value in (("--label", label), ("--per_class", per_class))
                 if value is not None]
        if given:
            raise ValueError(f"{' and '.join(given)} need a conditional model; "
                             f"{generator.source!r} is unconditional (trained without "
                             "--conditional)")
        return
    if label is None and per_class is None and labels is None:
        raise ValueError(f"{generator.source!r} is a conditional model: give --label (one of "
                         f"{generator.class_names}, or an index) or --per_class N")
    if label is not None:
        generator.label_index(label)


def check_no_wav_options(export_flag, given):
    """ValueError when flags that only shape WAV output (``given``, names without dashes) are
    combined with ``export_flag``, which writes the model in another form."""
    if given:
        names = ", ".join(f"--{name}" for name in given)
        raise ValueError(f"{names} shape WAV output and are not used with {export_flag}")
