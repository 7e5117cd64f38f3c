"""Networks: the layers (phase shuffle, LeakyReLU) and the generators and discriminators of both
families (WaveGAN, SpecGAN)."""
