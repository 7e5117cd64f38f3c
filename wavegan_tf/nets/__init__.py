"""Networks: the layers (phase shuffle, LeakyReLU), the generators and discriminators of both
families (WaveGAN, SpecGAN), and their latent z (seeded draws, interpolation, files)."""
