"""Infrastructure the chapters use but do not teach: data, checkpoints, argument checks, plots,
GIFs, the latent-space helpers, the in-page explorer and the settings read from the environment."""
