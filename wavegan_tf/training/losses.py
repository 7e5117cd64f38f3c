"""GAN objectives, as small pure functions of critic logits, and the critic's penalties.

Every loss is something to minimise. ``wgan-gp`` and ``wgan`` share the Wasserstein critic
objective; the gradient penalty (``wgan-gp``) and weight clipping (``wgan``) are applied by the
trainer. ``hinge`` is the hinge loss of SAGAN and BigGAN, usually paired with the R1 penalty
(:func:`r1_penalty`) and one critic update per generator step. Default optimizers are those of
the original code for each loss (hinge: Adam 2e-4, betas 0 / 0.99, as StyleGAN2).
"""

import keras
from keras import ops

LOSSES = ("wgan-gp", "wgan", "dcgan", "lsgan", "hinge")
# Losses whose default optimizer is Adam (their betas can be set).
ADAM_LOSSES = ("wgan-gp", "dcgan", "hinge")
WASSERSTEIN_LOSSES = ("wgan-gp", "wgan")


def check_loss(loss):
    """Raises a ValueError naming ``loss`` unless it is one of :data:`LOSSES`."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got loss={loss!r}")


def discriminator_loss(loss, real_logits, fake_logits):
    """The critic's loss for ``loss`` given D(x) and D(G(z)), without any gradient penalty.

    It is the sum of :func:`critic_real_term` and :func:`critic_fake_term`.
    """
    return critic_real_term(loss, real_logits) + critic_fake_term(loss, fake_logits)


def critic_real_term(loss, real_logits):
    """The part of the critic's loss that depends on D(x), a mean over the examples.

    Every critic loss here is such a term for the real clips plus one for the fake clips, so
    the trainer can differentiate the two passes of D one after the other.
    """
    check_loss(loss)
    if loss in WASSERSTEIN_LOSSES:
        return -ops.mean(real_logits)
    if loss == "dcgan":
        return _sigmoid_cross_entropy(real_logits, 1.0) / 2.0
    if loss == "hinge":
        return ops.mean(ops.relu(1.0 - real_logits))
    return ops.mean(ops.square(real_logits - 1.0)) / 2.0


def critic_fake_term(loss, fake_logits):
    """The part of the critic's loss that depends on D(G(z)), a mean over the examples."""
    check_loss(loss)
    if loss in WASSERSTEIN_LOSSES:
        return ops.mean(fake_logits)
    if loss == "dcgan":
        return _sigmoid_cross_entropy(fake_logits, 0.0) / 2.0
    if loss == "hinge":
        return ops.mean(ops.relu(1.0 + fake_logits))
    return ops.mean(ops.square(fake_logits)) / 2.0


def generator_loss(loss, fake_logits):
    """The generator's loss for ``loss`` given D(G(z))."""
    check_loss(loss)
    if loss in WASSERSTEIN_LOSSES or loss == "hinge":
        return -ops.mean(fake_logits)
    if loss == "dcgan":
        return _sigmoid_cross_entropy(fake_logits, 1.0)
    return ops.mean(ops.square(fake_logits - 1.0))


def _sigmoid_cross_entropy(logits, target):
    targets = ops.full_like(logits, target)
    return ops.mean(ops.binary_crossentropy(targets, logits, from_logits=True))


def check_r1(loss, r1_gamma):
    """ValueError naming ``r1_gamma`` unless it is >= 0, and 0 with "wgan-gp"."""
    if r1_gamma < 0:
        raise ValueError(f"r1_gamma must be >= 0 (0 = no R1 penalty), got r1_gamma={r1_gamma!r}")
    if r1_gamma and loss == "wgan-gp":
        raise ValueError(f"r1_gamma={r1_gamma!r} needs a loss without its own penalty, e.g. "
                         "loss='hinge'; 'wgan-gp' has the gradient penalty (gp_weight)")


def interpolate(real, fake, alpha):
    """``x_hat = real + alpha * (fake - real)``; ``alpha`` is ``[batch]``, one weight per example."""
    alpha = ops.reshape(alpha, (-1,) + (1,) * (len(real.shape) - 1))
    return real + alpha * (fake - real)


def gradient_penalty(input_gradients):
    """WGAN-GP penalty ``mean((||grad||_2 - 1)^2)`` from the critic's gradients w.r.t. x_hat.

    The norm is taken per example over all non-batch axes, as in the original code.
    """
    axes = tuple(range(1, len(input_gradients.shape)))
    slopes = ops.sqrt(ops.sum(ops.square(input_gradients), axis=axes))
    return ops.mean(ops.square(slopes - 1.0))


def r1_penalty(input_gradients):
    """The R1 penalty ``mean(||grad||_2^2)`` (Mescheder et al., 2018) from the critic's gradients
    w.r.t. real clips, the squared norm taken per example over all non-batch axes; the trainer
    weighs it by ``gamma / 2``."""
    axes = tuple(range(1, len(input_gradients.shape)))
    return ops.mean(ops.sum(ops.square(input_gradients), axis=axes))


def default_optimizers(loss, adam_betas=(None, None)):
    """Fresh ``(generator_optimizer, discriminator_optimizer)`` with the original's settings;
    ``adam_betas`` (each None: the loss's own) replace the betas of an Adam loss."""
    check_loss(loss)
    if any(beta is not None for beta in adam_betas) and loss not in ADAM_LOSSES:
        raise ValueError(f"adam_beta1 and adam_beta2 need a loss trained with Adam "
                         f"{ADAM_LOSSES}, got loss={loss!r} (RMSProp)")
    optimizers = []
    for role in ("generator", "discriminator"):
        optimizer = _default_optimizer(loss, role)
        for name, beta in zip(("beta_1", "beta_2"), adam_betas):
            if beta is not None:
                setattr(optimizer, name, float(beta))
        optimizers.append(optimizer)
    return tuple(optimizers)


def _default_optimizer(loss, role):
    name = f"{role}_optimizer"
    if loss == "wgan-gp":
        return keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9, name=name)
    if loss == "wgan":
        return keras.optimizers.RMSprop(5e-5, name=name)
    if loss == "dcgan":
        return keras.optimizers.Adam(2e-4, beta_1=0.5, name=name)
    if loss == "hinge":
        return keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.99, name=name)
    return keras.optimizers.RMSprop(1e-4, name=name)
