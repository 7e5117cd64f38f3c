"""Named training recipes: sets of GANConfig values that a run starts from.

``paper`` is the paper's settings (GANConfig's defaults). ``fast`` is the combination that
reached good sound soonest on a CPU in the quality benchmark (see the docs' quality page for
the measurements behind each value). A recipe only supplies defaults: every value given
explicitly (a flag of train.py, a key of the config) wins over it.
"""

RECIPES = ("paper", "fast")

# The fast recipe, per model. One critic update per generator step with the hinge loss and a
# lazy R1 penalty replaces WGAN-GP's five penalised updates (about 4x more generator steps a
# minute); Adam with beta1 = 0 and D learning twice as fast as G; G's weight average.
_FAST_COMMON = {
    "loss": "hinge",
    "n_critic": 1,
    "r1_gamma": 1.0,
    "r1_every": 4,
    "g_learning_rate": 1e-4,
    "d_learning_rate": 2e-4,
    "adam_beta1": 0.0,
    "adam_beta2": 0.99,
    "ema_decay": 0.999,
}
_FAST = {
    "wavegan": {**_FAST_COMMON, "spectral_heads": [256, 1024]},
    "specgan": dict(_FAST_COMMON),
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


def with_recipe(recipe, given):
    """``given`` config values over those of ``recipe`` for the model they name (WaveGAN when
    they name none)."""
    return {**recipe_values(recipe, given.get("model", "wavegan")), **given}


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
