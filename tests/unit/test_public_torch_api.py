"""The default path uses public torch API only: a torch without the private kernels still imports and trains.

torch is left unpinned so that Colab keeps its own build; the hand-derived gradients of the appendix are an
opt-in (``backward="manual"``) and are the only code that may reach for torch's private kernels, and only
when asked to.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPT_IN = {"vae_lesson/chapters/manual_backward.py"}


def _private_uses(path: Path) -> list[str]:
    """``torch._x`` and ``torch.ops`` attribute chains in a module, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
            if (node.attr.startswith("_") and not node.attr.startswith("__")) or node.attr == "ops":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} torch.{node.attr}")
    return found


def test_only_the_opt_in_module_names_private_torch_api():
    found = [use for path in sorted((ROOT / "vae_lesson").rglob("*.py"))
             if str(path.relative_to(ROOT)) not in OPT_IN for use in _private_uses(path)]
    assert found == []
    # the check itself finds what it looks for
    assert any("torch.ops" in use for use in _private_uses(ROOT / "vae_lesson/chapters/manual_backward.py"))


# A torch as an older or a differently built one would be: no aten.tanh_backward, no torch._fused_adam_,
# and an Adam that refuses fused=True for CPU weights (torch before 2.4).
WITHOUT_PRIVATE_OPS = textwrap.dedent("""
    import torch

    if hasattr(torch, "_fused_adam_"):
        del torch._fused_adam_

    class Aten:
        def __init__(self, real):
            self._real = real
        def __getattr__(self, name):
            if name == "tanh_backward":
                raise AttributeError("this torch has no aten.tanh_backward")
            return getattr(self._real, name)

    torch.ops.aten = Aten(torch.ops.aten)
    RealAdam = torch.optim.Adam

    class OldAdam(RealAdam):
        def __init__(self, params, *args, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be CUDA tensors")
            super().__init__(params, *args, **kwargs)

    torch.optim.Adam = OldAdam

    import vae_lesson as vl
    from vae_lesson.chapters import conv, manual_backward, swiss_roll, vqvae  # noqa: F401

    digits = vl.load_digits(verbose=False)
    x, x_test = digits.x_train_flat[:600], digits.x_test_flat
    losses = {}
    for backward in ("autograd", "manual"):
        vl.set_seed(0)
        model = vl.VAE(64, 4, 32)
        before = vl.evaluate(model, x_test)["total"]
        history = vl.train(model, x, x_test, num_epochs=3, lr=3e-3, quiet=True, backward=backward)
        losses[backward] = history.test["total"]
        assert history.test["total"][-1] < before - 2, (backward, before, history.test)
    step = manual_backward.ManualStep(vl.VAE(64, 4, 32))
    assert step._tanh_backward is manual_backward._tanh_backward_public
    # the public fallbacks compute the same numbers
    assert all(abs(a - b) < 1e-3 * abs(a) for a, b in zip(losses["autograd"], losses["manual"])), losses
    print("trained", losses)
""")


def test_a_torch_without_private_kernels_imports_and_trains():
    result = subprocess.run([sys.executable, "-c", WITHOUT_PRIVATE_OPS], capture_output=True, text=True,
                            timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "trained" in result.stdout
