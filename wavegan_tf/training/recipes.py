"""Named training recipes: sets of GANConfig values that a run starts from.

``paper`` is the paper's settings (GANConfig's defaults). ``fast`` is the combination that
reached good sound soonest on a CPU in the quality benchmark's screens (see the docs' quality
page for the measurements behind each value). A recipe only supplies defaults: every value given
explicitly (a flag of train.py, a key of the config) wins over it.
"""

from wavegan_tf.training.config import ARCHITECTURE_FIELDS

RECIPES = ("paper", "fast")

# The fast recipe, per model: one critic update per generator step instead of five (WGAN-GP
# kept), D learning four times as fast as G (TTUR), and for WaveGAN spectral heads beside the
# waveform critic and nearest-neighbour upsampling in G (the paper's ablation). In the quality
# benchmark's 6-minute screen on the digits (d=16, batch 16) the first three reached IS
# 1.50-1.71 and FID 1507 where the paper's settings had IS 1.13-1.41 and FID 1675-1832 in
# 5.5-8.2 minutes; nearest upsampling then lifted step 2000 from IS 1.67 / FID 672 to 2.18 / 396
# (IS 2.38 / FID 339 in 40 minutes). For SpecGAN it reached IS 3.77 / FID 165 in 35 minutes
# where the paper's settings reached 2.92 / 314; the docs' quality page has every variant.
_FAST = {
    "wavegan": {"n_critic": 1, "d_learning_rate": 4e-4, "spectral_heads": [256, 1024],
                "upsample": "nearest"},
    "specgan": {"n_critic": 1, "d_learning_rate": 4e-4},
}


def recipe_values(recipe, model):
    """The GANConfig values of ``recipe`` for ``model``; ValueError naming ``recipe`` for an
    unknown one."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {list(RECIPES)}, got recipe={recipe!r}")
    if recipe == "paper":
        return {}
    return {key: (list(value) if isinstance(value, list) else value)
            for key, value in _FAST[model].items()}


def with_recipe(recipe, given, saved=None):
    """``given`` config values over those of ``recipe`` for the model they name (WaveGAN when
    they name none).

    ``saved`` is the GANConfig of the run being resumed, if any: the recipe is then that of the
    saved run's model and leaves out the architecture fields, which the run keeps as it was
    built, so that a run started before the recipe changed still resumes with the same command.
    Values given explicitly are passed on as they are (and checked against the saved run).
    """
    if saved is None:
        return {**recipe_values(recipe, given.get("model", "wavegan")), **given}
    values = {key: value for key, value in recipe_values(recipe, saved.model).items()
              if key not in ARCHITECTURE_FIELDS}
    return {**values, **given}


def describe(recipe):
    """One line per model: the flags ``recipe`` sets, for --help and the docs."""
    lines = []
    for model in _FAST:
        values = recipe_values(recipe, model)
        flags = " ".join(f"--{k}={_flag_text(v)}" for k, v in values.items()) or "(defaults)"
        lines.append(f"{model}: {flags}")
    return "; ".join(lines)


def _flag_text(value):
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value).lower() if isinstance(value, bool) else str(value)
