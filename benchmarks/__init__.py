"""Benchmarks for vae_lesson, run from the repository root with ``python -m benchmarks`` (``--quick`` for a short run).

Each benchmark is one module with a ``run(config)`` function that prints its table and returns its numbers:

* ``training``: samples per second of ``vl.train`` against a plain tutorial-style loop and a float32
  matrix-multiply peak measured with the model's own layer shapes, at batch 100 and a larger batch.
* ``quality``: test -ELBO of both loops after the same number of epochs (same seeds, same data).

Timings are never compared across processes: every comparison interleaves its contenders in
alternating rounds inside one process (see ``benchmarks._timing``) and reports ratios, because the
machine may be shared. Nothing here is a test; the test suite only checks that the code runs and
that the numbers are computed from the right quantities.
"""
