"""The teaching core: what the chapters define and explain, kept here for later chapters.

- ``losses`` and ``reparameterize``: the Chainer-named building blocks ``gaussian_kl_divergence``,
  ``bernoulli_nll`` and ``gaussian`` (chapters 04 and 05);
- ``initializers``: the article's Xavier initialization (chapter 05);
- ``autoencoder`` (chapter 01) and ``vae`` (chapter 05): the two MLP models;
- ``training``: the minibatch loop every model trains with (chapters 01 and 05).

Each definition's docstring names the chapter that teaches it.
"""
