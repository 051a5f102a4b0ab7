"""Machinery for one chapter each: the models and experiments of the later chapters.

| module | chapter |
| --- | --- |
| ``gap_example`` | the ELBO chapter (``book/elbo.md``), its figure of the gap |
| ``swiss_roll`` | 02, the manifold hypothesis (the point VAE) |
| ``elbo`` | 03, the ELBO checked on a linear-Gaussian model |
| ``gradient_variance`` | 04, the pathwise and score-function estimators |
| ``conv`` | 06, convolutional VAEs |
| ``reconstruction`` | 07, which reconstruction loss |
| ``augment`` | 08, VAE data augmentation |
| ``vqvae`` | 09, the VQ-VAE |
| ``iwae``, ``reference`` | 10, reference numbers (importance-weighted bound, results table) |
| ``manual_backward`` | 11 (appendix), the hand-derived gradients, an opt-in |
"""
