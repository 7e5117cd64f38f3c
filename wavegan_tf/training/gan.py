"""The trainer of both model families: a ``keras.Model`` whose ``train_step`` is one generator
step, ``n_critic`` critic updates on their own real batches (see
:mod:`wavegan_tf.training.feeding`) and fresh z ~ U(-1, 1), then one generator update, as in the
original code; ``model.fit`` counts generator steps. The paper's WGAN-GP is the default; the
hinge loss, the R1 penalty, feature matching, augmentation and G's weight average are options.
Passes of D run one after the other (:mod:`wavegan_tf.training.passes`), split into
micro-batches on request, and replicas each train on their share of the global batch
(:mod:`wavegan_tf.training.replicas`). The docs' training page explains each choice.
"""

import keras
import tensorflow as tf
from keras import ops

from wavegan_tf.nets.models import check_conditioning, check_positive, critic_features
from wavegan_tf.training import augment as augmentation
from wavegan_tf.training import averaging, feeding, losses, passes, replicas


@keras.saving.register_keras_serializable(package="wavegan_tf", name="WaveGAN")
class GANTrainer(keras.Model):
    """Adversarial training of a generator against a discriminator (critic).

    Args:
        generator: model mapping z ``[batch, latent_dim]`` to audio ``[batch, time, channels]``.
        discriminator: model mapping audio to one logit per example ``[batch, 1]``.
        loss: one of "wgan-gp" (paper default), "wgan", "dcgan", "lsgan".
        n_critic: discriminator updates per generator update (5 in the paper).
        gp_weight: lambda of the gradient penalty (10 in the paper; "wgan-gp" only).
        clip_value: weight-clipping bound for the discriminator ("wgan" only).
        latent_dim: size of z.
        seed: optional int seed for z, the penalty's interpolation weights and nothing else.
        num_classes: 0 for the paper's unconditional WaveGAN; else the number of classes of a
            class-conditional G and D (each must then take a label as its second input).
        micro_batches: split every batch into this many equal parts whose gradients are summed,
            to cut peak memory; the update is the same as on the whole batch (1: no split).
        ema_decay: 0 (the paper) or the decay in (0, 1) of the generator's weight average
            (see the module doc), e.g. 0.999.
        augment: policies of :mod:`wavegan_tf.training.augment` applied to every clip D sees (empty:
            none, the paper), e.g. ``("shift", "gain", "mask")``.
        r1_gamma: weight gamma of the R1 penalty ``gamma / 2 * E||grad D(x)||^2`` on real clips
            (0: off, the paper); not with "wgan-gp", which has its own penalty.
        r1_every: apply R1 on every ``r1_every``-th critic update only, weighted by
            ``r1_every`` (lazy regularisation, as StyleGAN2), to save its double backprop.
        feature_matching: weight of a feature-matching term in G's loss (0: off, the paper):
            the mean absolute difference between the batch means of D's activations (every
            LeakyReLU output) on the step's last real batch and on G's clips (Salimans et al.,
            2016; MelGAN).
    """

    def __init__(self, generator, discriminator, loss="wgan-gp", n_critic=5, gp_weight=10.0,
                 clip_value=0.01, latent_dim=100, seed=None, num_classes=0, micro_batches=1,
                 ema_decay=0.0, augment=(), r1_gamma=0.0, r1_every=1, feature_matching=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        losses.check_loss(loss)
        check_positive(n_critic=n_critic, micro_batches=micro_batches, r1_every=r1_every)
        losses.check_r1(loss, r1_gamma)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got gp_weight={gp_weight!r}")
        if clip_value <= 0:
            raise ValueError(f"clip_value must be > 0, got clip_value={clip_value!r}")
        check_conditioning(generator, discriminator, num_classes)
        averaging.check_ema_decay(ema_decay)
        self.augment = augmentation.check_policies(augment)
        self.ema_decay = float(ema_decay)
        self.micro_batches = int(micro_batches)
        self.num_classes = int(num_classes)
        # Axes of one real example: 2 for audio [time, channels], 3 for a spectrogram.
        self.example_rank = feeding.example_rank(discriminator)
        self.generator = generator
        self.discriminator = discriminator
        self.ema_generator = averaging.untrained_copy(generator) if self.ema_decay else None
        self.loss_name = loss
        self.n_critic = int(n_critic)
        self.gp_weight = float(gp_weight)
        self.clip_value = float(clip_value)
        self.r1_gamma = float(r1_gamma)
        self.r1_every = int(r1_every)
        if feature_matching < 0:
            raise ValueError(f"feature_matching must be >= 0 (0 = off), got "
                             f"feature_matching={feature_matching!r}")
        self.feature_matching = float(feature_matching)
        self.critic_features = critic_features(discriminator) if feature_matching else None
        self.latent_dim = int(latent_dim)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="wavegan_seed")
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.wasserstein_tracker = keras.metrics.Mean(name="wasserstein")
        self.gp_tracker = keras.metrics.Mean(name="gp")
        self.r1_tracker = keras.metrics.Mean(name="r1")
        # G and D are built functional models; marking the trainer built stops fit under a
        # tf.distribute strategy from tracing call() on a real batch to build it.
        self.built = True

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Sets the two optimizers; ``None`` takes the original's optimizer for the loss.

        Under a ``mixed_float16`` dtype policy the optimizers are wrapped in a
        ``LossScaleOptimizer`` so that small float16 gradients do not underflow.
        """
        default_g, default_d = losses.default_optimizers(self.loss_name)
        self.g_optimizer = replicas.with_loss_scaling(g_optimizer or default_g)
        self.d_optimizer = replicas.with_loss_scaling(d_optimizer or default_d)
        super().compile(**kwargs)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def metrics(self):
        trackers = [self.d_loss_tracker, self.g_loss_tracker]
        if self.loss_name in losses.WASSERSTEIN_LOSSES:
            trackers.append(self.wasserstein_tracker)
        if self.loss_name == "wgan-gp":
            trackers.append(self.gp_tracker)
        if self.r1_gamma:
            trackers.append(self.r1_tracker)
        return trackers

    @property
    def sampling_generator(self):
        """The G to listen to, export and score: the weight average when there is one."""
        return self.generator if self.ema_generator is None else self.ema_generator

    def reset_average(self):
        """Sets the weight average to G's current weights (nothing without averaging)."""
        if self.ema_generator is not None:
            for average, weight in zip(self.ema_generator.weights, self.generator.weights):
                average.assign(weight)

    @property
    def conditional(self):
        """True for a class-conditional WaveGAN (``num_classes > 0``)."""
        return self.num_classes > 0

    def call(self, z, training=False):
        """G(z), or G([z, label]) for a conditional WaveGAN."""
        return self.generator(z, training=training)

    def sample_z(self, batch_size):
        """z ~ U(-1, 1) of shape ``[batch_size, latent_dim]`` from the model's seed generator.

        Inside a replica of a distribution strategy ``batch_size`` is the replica's share: the
        draw is made for the global batch and the replica's own rows are returned.
        """
        return replicas.replica_rows(batch_size, lambda n: keras.random.uniform(
            (n, self.latent_dim), -1.0, 1.0, seed=self.seed_generator))

    def sample_alpha(self, batch_size):
        """The penalty's interpolation weights, alpha ~ U(0, 1), one per example (as z)."""
        return replicas.replica_rows(batch_size, lambda n: keras.random.uniform(
            (n,), 0.0, 1.0, seed=self.seed_generator))

    def sample_augment_draws(self, batch_size):
        """The uniforms that fix one pass's augmentation (as z), or None without augmentation
        (then nothing is drawn, so the paper's random stream is unchanged)."""
        if not self.augment:
            return None
        return replicas.replica_rows(batch_size, lambda n: augmentation.sample_draws(
            n, self.seed_generator))

    def train_step(self, data):
        reals, labels = self._critic_stacks(data)
        self._check_micro_batches(reals)
        if self._loop_critic_updates():
            after = self._critic_loop(reals, labels)
        else:
            after = ()
            for i in range(self.n_critic):
                after = self._critic_step(reals[i], _row(labels, i), after)
        self._generator_step(ops.shape(reals)[1], _row(labels, self.n_critic - 1), after,
                             real=reals[self.n_critic - 1] if self.feature_matching else None)
        results = {m.name: m.result() for m in self.metrics}
        if replicas.fit_reduces_along_axis_0(tf.distribute.get_strategy()):
            results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
        return results

    def _loop_critic_updates(self):
        """Whether the critic updates of this trace run as a loop (see :meth:`_critic_loop`):
        in a graph, on one device, without XLA (which plans its own buffers and measured
        several times slower with the loop on CPU)."""
        return (self.n_critic > 1 and tf.inside_function() and not tf.distribute.has_strategy()
                and not self.jit_compile)

    def _critic_loop(self, reals, labels):
        """The ``n_critic`` critic updates as one ``tf.while_loop``, one iteration at a time.

        The graph then holds one critic update instead of ``n_critic`` copies: at d=64 the
        unrolled graph and its kernels took several hundred MB. Under a distribution strategy
        the updates stay unrolled, because a gradient all-reduce cannot run inside a loop.
        """
        def body(i):
            after = self._critic_step(reals[i], _row(labels, i))
            with tf.control_dependencies(after):
                return (i + 1,)

        count = tf.while_loop(lambda i: i < self.n_critic, body, (tf.constant(0),),
                              parallel_iterations=1)
        return list(count)

    def _critic_stacks(self, data):
        """One dataset element as real examples ``[n_critic, batch, ...]`` and labels
        ``[n_critic, batch]`` or None (see :func:`wavegan_tf.training.feeding.critic_stacks`)."""
        return feeding.critic_stacks(data, self.n_critic, self.example_rank, self.num_classes)

    def _check_micro_batches(self, reals):
        batch_size = reals.shape[1]
        if batch_size is not None and batch_size % self.micro_batches:
            raise ValueError(
                f"micro_batches={self.micro_batches} must divide the batch each replica trains "
                f"on, got a batch of {batch_size} examples")

    def _generate(self, z, labels, training):
        return self.generator(z if labels is None else [z, labels], training=training)

    def _discriminate(self, audio, labels, training, draws=None):
        """D's logits of ``audio``, augmented first when ``draws`` are given."""
        if draws is not None:
            audio = augmentation.apply(audio, draws, self.augment)
        return self.discriminator(audio if labels is None else [audio, labels],
                                  training=training)

    def _critic_step(self, real, labels=None, after=()):
        """One critic update; returns the tensors the next pass must wait for (see
        :meth:`_accumulate`)."""
        batch_size = ops.shape(real)[0]
        fake = self._generate(passes.after(after, self.sample_z(batch_size)), labels, training=True)
        # D's passes start once G's forward pass is done: run beside it, the real clips' pass
        # would hold its activations together with G's.
        after = [fake]
        variables = self.discriminator.trainable_variables
        models = (self.discriminator,)
        gp, grads = ops.zeros(()), None
        if self.loss_name == "wgan-gp":
            # The penalty's pass, the largest (D differentiated twice), runs first, while no
            # summed gradients are held beside it.
            alpha = self.sample_alpha(batch_size)
            gp, grads, after = self._accumulate(
                lambda x, f, a, y, d: self._gradient_penalty(x, f, y, alpha=a, draws=d),
                (real, fake, alpha, labels, self.sample_augment_draws(batch_size)), variables,
                self.d_optimizer, models, after, weight=self.gp_weight)
        r1 = ops.zeros(())
        if self.r1_gamma:
            r1, grads, after = self._r1_pass(real, labels, variables, models, after)
        wasserstein = 0.0
        for term, audio in ((losses.critic_real_term, real), (losses.critic_fake_term, fake)):
            value, pass_grads, after = self._accumulate(
                lambda x, y, a, term=term: term(self.loss_name,
                                                self._discriminate(x, y, True, a)),
                (audio, labels, self.sample_augment_draws(batch_size)), variables,
                self.d_optimizer, models, after)
            wasserstein, grads = wasserstein - value, passes.add_gradients(grads, pass_grads)
        d_loss = self.gp_weight * gp + 0.5 * self.r1_gamma * r1 - wasserstein
        self.d_optimizer.apply_gradients(zip(grads, variables))
        if self.loss_name == "wgan":
            for variable in variables:
                variable.assign(ops.clip(variable, -self.clip_value, self.clip_value))
        self.d_loss_tracker.update_state(d_loss)
        self.wasserstein_tracker.update_state(wasserstein)
        self.gp_tracker.update_state(gp)
        if self.r1_gamma:
            self.r1_tracker.update_state(r1)
        return after

    def _r1_pass(self, real, labels, variables, models, after):
        """The R1 penalty's value and its weighted gradients (see ``r1_every``): on a critic
        update that skips it, zeros without running D. The augmentation draws are taken either
        way, so the random stream does not depend on the schedule."""
        draws = self.sample_augment_draws(ops.shape(real)[0])
        weight = 0.5 * self.r1_gamma * self.r1_every

        def run():
            value, grads, _ = self._accumulate(
                lambda x, y, d: self._r1_penalty(x, y, d), (real, labels, draws), variables,
                self.d_optimizer, models, after, weight=weight)
            return value, [ops.zeros_like(v) if g is None else g
                           for g, v in zip(grads, variables)]

        if self.r1_every == 1:
            value, grads = run()
        else:
            due = ops.equal(self.d_optimizer.iterations % self.r1_every, 0)
            value, grads = tf.cond(due, run, lambda: (
                ops.zeros(()), [ops.zeros_like(v) for v in variables]))
        return value, grads, list(grads)

    def _r1_penalty(self, real, labels=None, draws=None):
        """R1 at the real clips (augmented first with ``draws``), each example's label held
        fixed; the gradient is taken at D's own input, as the WGAN-GP penalty's."""
        if draws is not None:
            real = augmentation.apply(real, draws, self.augment)
        with tf.GradientTape() as tape:
            tape.watch(real)
            logits = self._discriminate(real, labels, training=True)
        return losses.r1_penalty(tape.gradient(logits, real))

    def _gradient_penalty(self, real, fake, labels=None, alpha=None, draws=None):
        """WGAN-GP term at x_hat = x + alpha (G(z) - x), alpha ~ U(0, 1) per example.

        ``alpha`` is drawn from the model's seed generator unless given. For a conditional D
        the gradient is taken with respect to x_hat only, each example's label held fixed
        (real and fake share the labels, so x_hat is a clip of that label). With augmentation
        ``draws``, x_hat is augmented first and the gradient taken at the augmented clip.
        """
        if alpha is None:
            alpha = self.sample_alpha(ops.shape(real)[0])
        x_hat = losses.interpolate(real, fake, alpha)
        if draws is not None:
            x_hat = augmentation.apply(x_hat, draws, self.augment)
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            logits = self._discriminate(x_hat, labels, training=True)
        return losses.gradient_penalty(tape.gradient(logits, x_hat))

    def _generator_step(self, batch_size, labels=None, after=(), real=None):
        z = passes.after(after, self.sample_z(batch_size))
        g_loss, grads, _ = self._accumulate(
            self._generator_loss, (z, labels, self.sample_augment_draws(batch_size), real),
            self.generator.trainable_variables, self.g_optimizer,
            (self.generator, self.discriminator), after)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        self.g_loss_tracker.update_state(g_loss)
        if self.ema_generator is not None:
            averaging.update_average(self.ema_generator, self.generator, self.ema_decay,
                                     self.g_optimizer.iterations.value)

    def _generator_loss(self, z, labels, draws, real):
        """G's loss on ``z``, plus the feature-matching term against ``real`` when it is on."""
        fake = self._generate(z, labels, training=True)
        if real is None:
            return losses.generator_loss(self.loss_name,
                                         self._discriminate(fake, labels, True, draws))
        *fake_features, logits = self._features(fake, labels, draws)
        real_features = self._features(real, labels, draws)[:-1]
        matching = ops.mean(ops.stack([
            ops.mean(ops.abs(ops.mean(f, axis=0) - ops.stop_gradient(ops.mean(r, axis=0))))
            for f, r in zip(fake_features, real_features)]))
        return losses.generator_loss(self.loss_name, logits) + self.feature_matching * matching

    def _features(self, audio, labels, draws):
        """D's activations and, last, its logits for ``audio`` (augmented with ``draws``)."""
        if draws is not None:
            audio = augmentation.apply(audio, draws, self.augment)
        return self.critic_features(audio if labels is None else [audio, labels], training=True)

    def average_decay(self, updates):
        """The averaging decay after ``updates`` generator updates (see
        :func:`wavegan_tf.training.averaging.average_decay`)."""
        return averaging.average_decay(self.ema_decay, updates)

    def _accumulate(self, loss_fn, inputs, variables, optimizer, models, after, weight=1.0):
        """The batch mean of ``loss_fn(*inputs)`` and the gradients of ``weight`` times it.

        ``loss_fn`` must be a mean over the examples of ``inputs`` (tensors with the batch on
        axis 0, or None). With ``micro_batches = K > 1`` it is evaluated on K equal parts of the
        batch, one after the other, and the parts' values and gradients (each divided by K)
        are summed: the same mean and gradient with about 1/K of the activations alive. Before
        each part after the first, the seed generators of ``models`` (the phase-shuffle layers)
        are put back to where they were before the first part, so every part draws the same
        shifts that one call on the whole batch would: the update is that of the whole batch.

        The pass starts only after the tensors in ``after`` exist, and returns the tensors its
        successor must wait for: without that order TensorFlow may run independent passes at
        once and hold all their activations together.
        """
        parts = self.micro_batches
        states = passes.seed_states(models) if parts > 1 else []
        after = list(after) + [state for _, state in states]
        total, grads = 0.0, None
        for index, part in enumerate(passes.split_rows(inputs, parts)):
            if index:
                for generator, state in states:
                    generator.state.assign(state)
            with passes.after_context(after), tf.GradientTape() as tape:
                value = loss_fn(*part) / parts
                scaled_loss = optimizer.scale_loss(replicas.replica_share(weight * value))
            part_grads = tape.gradient(scaled_loss, variables)
            grads = passes.add_gradients(grads, part_grads)
            total = total + value
            after = [t for t in tf.nest.flatten(part_grads, expand_composites=True)
                     if t is not None]
        return total, grads, after

    def get_config(self):
        return {
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "loss": self.loss_name, "n_critic": self.n_critic, "gp_weight": self.gp_weight,
            "clip_value": self.clip_value, "latent_dim": self.latent_dim, "seed": self.seed,
            "num_classes": self.num_classes, "micro_batches": self.micro_batches,
            "ema_decay": self.ema_decay, "augment": list(self.augment),
            "r1_gamma": self.r1_gamma, "r1_every": self.r1_every,
            "feature_matching": self.feature_matching,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


def _row(stack, i):
    """Row ``i`` of ``stack``, or None when there is no stack (unconditional labels)."""
    return None if stack is None else stack[i]
