"""The command-line programs, one module each, installed as console commands.

Each module here (``train``, ``generate``, ``evaluate``, ``convert_tf1``) defines its flags with absl and a ``main(argv)``
that only parses them and calls the library, plus ``run()``: the entry point of its console
command in ``pyproject.toml`` (``wavegan-train = "wavegan_tf.cli.train:run"``) and of the
3-line script of the same name in the repository root (``python train.py``). Both start the
program through :func:`run_program`, so the two behave the same, ``--help`` included, and
``--help`` (``--helpshort``, ``--helpfull``, ``--helpxml``) exits with status 0 (absl's own
exit status after printing help is 1, which would break ``cmd --help && ...`` in scripts).
Scripts that start absl themselves (those in ``bench/``) pass :func:`parse_flags` as
``app.run(main, flags_parser=parse_flags)`` for the same exit status. A new
program follows the same pattern: a module with its flags, ``main`` and
``def run(): run_program(main, __name__)``, a line under ``[project.scripts]`` and a root shim.
``generate_wavs`` is the WAV writing of ``generate.py`` without its flags, so that tests and
notebooks can import it beside another program's flags.

The root shims set ``TF_CPP_MIN_LOG_LEVEL=2`` before anything imports TensorFlow, which hides
TensorFlow's start-up notices; a console command imports the package first, so set it in the
environment to hide them there.
"""

import sys

from absl import app, flags

from wavegan_tf.cpu.allocator import release_freed_blocks


def run_program(main, module_name):
    """Runs ``main`` under ``absl.app.run`` as the program defined by module ``module_name``,
    with the C allocator settings of :mod:`wavegan_tf.cpu.allocator`.

    absl's ``--help`` prints the ``__main__`` module's docstring and the flags of the file that
    was started (``sys.argv[0]``). Here that file is a shim or a console script, so the
    program module's docstring is used as the usage text and its flags are declared key flags
    of the started file: ``--help`` then reads the same whichever way the program was started.
    """
    release_freed_blocks()
    module = sys.modules[module_name]
    sys.modules["__main__"].__doc__ = module.__doc__
    for flag in flags.FLAGS.get_flags_for_module(module_name):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
    app.run(main, flags_parser=parse_flags)


def parse_flags(argv):
    """absl's flag parsing (a bad flag prints the error and exits 1), except that the help flags
    exit with 0 once they have printed the help.

    The help flags are the only flags that end the program while the flags are parsed (absl
    exits with 1 there); every other problem is a ``flags.Error``, reported by absl's usual
    parser.
    """
    try:
        return flags.FLAGS(argv)
    except flags.Error:
        return app.parse_flags_with_usage(argv)
    except SystemExit as exit:
        raise SystemExit(0 if exit.code == 1 else exit.code) from None
