"""The MLP VAE's gradients derived by hand: one training step of :class:`~vae_lesson.VAE`
without autograd.

Autograd is general: it records every operation of ``model.loss`` in a graph, allocates each
intermediate and each gradient afresh, and replays the graph backwards. For the book's one fixed
architecture the same numbers can be computed directly, into buffers allocated once, which on a CPU
is the difference between a loop dominated by bookkeeping and one dominated by its matrix products.
It is an opt-in, worked out in the appendix (notebooks/13_build_times.ipynb) as an exercise:
``vl.train(..., backward="manual")`` uses it for a plain ``VAE`` with tanh activations and one
sample of z per image (``k=1``); the default, ``backward="autograd"``, is the loop chapter 01 writes
out. ``tests/unit/test_manual_backward.py`` checks every gradient against autograd.

The derivation, for a batch of B images x (B, n_in), with row-vector layers ``a = h W^T + b``:

Forward::

    h1 = tanh(x W1^T + b1)        h2 = tanh(h1 W2^T + b2)
    [mu, lv] = h2 [Wmu; Wlv]^T + [bmu; blv]            (both heads in one product)
    sd = exp(lv / 2)              z = mu + sd * eps,  eps ~ N(0, I)
    g1 = tanh(z D1^T + c1)        g2 = tanh(g1 D2^T + c2)        y = g2 D3^T + c3   (logits)
    loss = [sum softplus(y) - x . y] / B  +  C/(2B) sum(mu^2 + sd^2 - lv - 1)

Backward, writing d_v for d loss / d v:

* Bernoulli term: d softplus(y)/dy = sigmoid(y), so ``d_y = (sigmoid(y) - x) / B``.
* Linear layer ``a = h W^T + b``: ``d_W = d_a^T h``, ``d_b = sum over rows of d_a``, ``d_h = d_a
W``.
* tanh: ``d_a = d_h * (1 - tanh(a)^2)``, computed from the layer's output.
* Reparameterization: ``d_mu = d_z + (C/B) mu`` and
  ``d_lv = d_z * (z - mu) / 2 + (C/2B)(sd^2 - 1)``, since dz/dlv = sd * eps / 2 = (z - mu) / 2
  and d(sd^2 - lv)/dlv = sd^2 - 1.

Two numerical choices, both exact identities evaluated differently:

* tanh(a) is ``torch.tanh`` where that is the fast way and ``2 sigmoid(2a) - 1`` elsewhere (see
  :func:`tanh_form`): the same function; the two agree to about 1e-7. torch's CPU tanh comes from
  Intel's MKL, whose AVX-512 code is faster than torch's sigmoid, and whose AVX2 code (the most
  MKL runs on many processors, AMD's among them) is about three times slower than it.
* The Bernoulli term uses ``softplus(y) = max(y, 0) - log(sigmoid(|y|))`` with
  ``sigmoid(|y|) = max(p, 1 - p)`` for the ``p = sigmoid(y)`` the gradient needs anyway: one log
  of a number in [1/2, 1] per pixel instead of torch's log1p(exp(.)), and never log(0).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core.training import NonFiniteLossError
from ..core.vae import VAE, VAELoss
from ..infra.checks import check_images, check_kl_weight

__all__ = [
    "ManualStep",
    "manual_gradients",
    "manual_train_epoch",
    "tanh_form",
    "unsupported_reason",
]


def _tanh_backward_public(
    d_h: torch.Tensor, out: torch.Tensor, *, grad_input: torch.Tensor
) -> torch.Tensor:
    """d_h * (1 - out^2) into ``grad_input``, with public torch operations (three passes)."""
    return torch.mul(out, out, out=grad_input).neg_().add_(1).mul_(d_h)


def _tanh_backward_kernel():
    """torch's one-pass tanh backward kernel where this torch has it, else
    :func:`_tanh_backward_public`.

    Looked up when a :class:`ManualStep` is built, never at import: the kernel is not public API.
    """
    try:
        return torch.ops.aten.tanh_backward.grad_input
    except (AttributeError, RuntimeError):
        return _tanh_backward_public


def tanh_form() -> str:
    """How :class:`ManualStep` evaluates tanh on this machine: ``"tanh"`` (``torch.tanh``) where
    torch has MKL and runs AVX-512 code, else ``"sigmoid"`` (``2 sigmoid(2a) - 1``).

    Decided from the processor alone, never by timing, so that two runs on one machine compute the
    same numbers. On an Intel Xeon with AVX-512 torch.tanh made the step about 3 % faster; with
    MKL held to AVX2 (``MKL_ENABLE_INSTRUCTIONS=AVX2``) it took 37 us against the sigmoid's 11 us
    on a (100, 500) batch. A processor that runs AVX-512 in torch but MKL's AVX2 code (AMD's
    Zen 4 may be one) gets the slower choice: the same numbers to rounding, a few percent slower.
    """
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    fast = torch.backends.mkl.is_available() and capability.startswith("AVX512")
    return "tanh" if fast else "sigmoid"


def unsupported_reason(model: nn.Module, loss_kwargs: dict) -> str | None:
    """Why ``model`` with ``loss_kwargs`` cannot use :class:`ManualStep` (None if it can)."""
    if type(model) is not VAE:
        return f"only a plain vae_lesson.VAE is supported, got {type(model).__name__}"
    if model.act_func is not torch.tanh:
        return f"only tanh activations are supported, got {model.config['act_func']}"
    unknown = set(loss_kwargs) - {"C", "k"}
    if unknown:
        return f"unknown loss arguments {sorted(unknown)}"
    if loss_kwargs.get("k", 1) != 1:
        return f"only one sample of z per image (k=1) is supported, got k={loss_kwargs['k']!r}"
    params = list(model.parameters())
    if any(p.device.type != "cpu" for p in params):
        return "only weights on the CPU are supported"
    if len({p.dtype for p in params}) != 1 or params[0].dtype not in (torch.float32, torch.float64):
        return "the weights must all be float32 or all float64"
    if not all(p.requires_grad for p in params):
        return "some weights are frozen (requires_grad=False)"
    if any(
        module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
        for module in model.modules()
    ):
        return "the model has hooks, which this path would not call"
    return None


def manual_gradients(model: VAE, x: torch.Tensor, C: float = 1.0) -> VAELoss:
    """The loss of the batch ``x`` and its gradients, computed by hand, in every weight's ``.grad``.

    The same numbers as ``loss = model.loss(x, C=C); loss.total.backward()`` (to rounding) when
    torch's generator is in the same state, since eps is drawn the same way; ``.grad`` is
    overwritten, not accumulated. Returns the :class:`VAELoss` (0-d tensors, detached). For a plain
    ``VAE`` with tanh activations.
    """
    reason = unsupported_reason(model, {"C": C})
    if reason is not None:
        raise ValueError(f"manual_gradients cannot differentiate this model: {reason}")
    check_kl_weight(C)
    x = check_images(x, model)
    loss = ManualStep(model, C)(x, torch.arange(len(x)))
    return VAELoss(*(torch.tensor(value, dtype=x.dtype) for value in loss))


class ManualStep:
    """Loss and gradients of one batch, written into the weights' ``.grad``, for a :class:`VAE`.

    ``step(x, index)`` takes the rows ``index`` of ``x`` as the batch, draws eps from torch's global
    generator exactly as ``model.loss`` does, fills every parameter's ``.grad`` with d loss / d
    param (overwriting it: no ``zero_grad`` needed) and returns the batch's :class:`VAELoss` as
    Python floats. ``x`` and ``index`` are not checked on each call (``train`` checked the data
    once, and builds the indices itself); :func:`manual_gradients` is the checked entry point.
    :meth:`release` sets the ``.grad`` buffers back to None.
    """

    def __init__(self, model: VAE, C: float = 1.0):
        reason = unsupported_reason(model, {"C": C})
        if reason is not None:
            raise ValueError(f"ManualStep cannot train this model: {reason}")
        check_kl_weight(C)
        self.model, self.C = model, float(C)
        m = model
        L, n_hidden = m.n_latent, m.le2.in_features
        self._dtype = dtype = m.le1.weight.dtype
        # Both encoder heads as one (2L, n_hidden) product; their gradients are adjacent rows
        # of one buffer.
        self._heads_w = torch.empty(2 * L, n_hidden, dtype=dtype)
        self._heads_b = torch.empty(2 * L, dtype=dtype)
        self._heads_gw = torch.empty(2 * L, n_hidden, dtype=dtype)
        self._heads_gb = torch.empty(2 * L, dtype=dtype)
        self._heads_w_t = self._heads_w.t()
        self._one = torch.ones((), dtype=dtype)
        self._heads_weights = (m.le3_mu.weight, m.le3_ln_var.weight)
        self._heads_biases = (m.le3_mu.bias, m.le3_ln_var.bias)
        self._grads, self._t = {}, {}
        self._layers = (m.le1, m.le2, m.ld1, m.ld2, m.ld3)
        for layer in self._layers:
            layer.weight.grad = torch.empty_like(layer.weight)
            layer.bias.grad = torch.empty_like(layer.bias)
            self._grads[layer] = (layer.weight.grad, layer.bias.grad)
            self._t[layer] = (
                layer.weight.t()
            )  # a view: Adam updates the weight in place, so it stays current
        m.le3_mu.weight.grad, m.le3_ln_var.weight.grad = self._heads_gw[:L], self._heads_gw[L:]
        m.le3_mu.bias.grad, m.le3_ln_var.bias.grad = self._heads_gb[:L], self._heads_gb[L:]
        self._buffers = {}
        self._tanh_backward = _tanh_backward_kernel()
        self.tanh_form = tanh_form()

    def release(self) -> None:
        """Detach the gradient buffers from the weights (``.grad = None``), as after
        ``zero_grad()``."""
        for p in self.model.parameters():
            p.grad = None

    def _batch_buffers(self, B: int) -> dict:
        """Every intermediate of a batch of B rows, allocated once per batch size, with the views
        the step uses."""
        if B not in self._buffers:
            m = self.model
            n_in, n_hidden, L = m.n_in, m.le2.in_features, m.n_latent
            shapes = dict(
                x=(B, n_in),
                h1=(B, n_hidden),
                h2=(B, n_hidden),
                heads=(B, 2 * L),
                d_heads=(B, 2 * L),
                eps=(B, L),
                sd=(B, L),
                var=(B, L),
                noise=(B, L),
                z=(B, L),
                d_z=(B, L),
                g1=(B, n_hidden),
                g2=(B, n_hidden),
                y=(B, n_in),
                p=(B, n_in),
                work_in=(B, n_in),
                work_h=(B, n_hidden),
                d_a=(B, n_hidden),
                d_b=(B, n_hidden),
            )
            b = {name: torch.empty(shape, dtype=self._dtype) for name, shape in shapes.items()}
            b.update(
                mu=b["heads"][:, :L],
                lv=b["heads"][:, L:],
                d_mu=b["d_heads"][:, :L],
                d_lv=b["d_heads"][:, L:],
                x_flat=b["x"].view(-1),
                y_flat=b["y"].view(-1),
            )
            b.update({f"{name}_t": b[name].t() for name in ("p", "d_a", "d_b", "d_heads")})
            self._buffers[B] = b
        return self._buffers[B]

    def _tanh_layer(self, layer: nn.Linear, h: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if self.tanh_form == "tanh":
            return torch.addmm(layer.bias, h, self._t[layer], out=out).tanh_()
        # tanh(h W^T + b) = 2 sigmoid(2 (h W^T + b)) - 1; addmm's alpha and beta do the doubling,
        # and lerp(s, 1, -1) = s - (1 - s) = 2s - 1 in one pass.
        return (
            torch.addmm(layer.bias, h, self._t[layer], beta=2, alpha=2, out=out)
            .sigmoid_()
            .lerp_(self._one, -1.0)
        )

    @staticmethod
    def _linear_grads(grads, d_a_t, d_a, h) -> None:
        weight_grad, bias_grad = (
            grads  # d_W = d_a^T h (d_a_t is d_a.t(), a view made once), d_b = row sum of d_a
        )
        torch.mm(d_a_t, h, out=weight_grad)
        torch.sum(d_a, 0, out=bias_grad)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, index: torch.Tensor) -> VAELoss:
        C = self.C
        le1, le2, ld1, ld2, ld3 = (
            self._layers
        )  # plain attributes: nn.Module's __getattr__ costs ~1 us a lookup
        B = len(index)
        b = self._batch_buffers(B)
        xb, h1, h2, heads, mu, lv = b["x"], b["h1"], b["h2"], b["heads"], b["mu"], b["lv"]
        sd, var, noise, z = b["sd"], b["var"], b["noise"], b["z"]
        g1, g2, y, p, work_in = b["g1"], b["g2"], b["y"], b["p"], b["work_in"]
        grads, _tanh_backward_out = self._grads, self._tanh_backward

        # forward
        torch.index_select(x, 0, index, out=xb)
        self._tanh_layer(le1, xb, h1)
        self._tanh_layer(le2, h1, h2)
        torch.cat(self._heads_weights, out=self._heads_w)
        torch.cat(self._heads_biases, out=self._heads_b)
        torch.addmm(self._heads_b, h2, self._heads_w_t, out=heads)
        eps = b["eps"].normal_()  # the numbers model.loss draws: randn_like of a (k=1, B, L) tensor
        torch.mul(lv, 0.5, out=sd).exp_()
        torch.mul(sd, eps, out=noise)  # z - mu
        torch.add(noise, mu, out=z)
        self._tanh_layer(ld1, z, g1)
        self._tanh_layer(ld2, g1, g2)
        torch.addmm(ld3.bias, g2, self._t[ld3], out=y)

        # loss, as Python numbers: sum softplus(y) - x.y, with softplus(y) = max(y, 0) - log(max(p,
        # 1 - p))
        torch.sigmoid(y, out=p)
        log_sigmoid_abs = float(
            torch.maximum(p, torch.neg(p, out=work_in).add_(1), out=work_in).log_().sum()
        )
        relu_sum = float(
            torch.clamp_min(y, 0, out=work_in).sum()
        )  # into a buffer: fresh memory costs page faults
        reconstruction = (
            relu_sum - log_sigmoid_abs - float(torch.dot(b["x_flat"], b["y_flat"]))
        ) / B
        torch.mul(sd, sd, out=var)
        kl = (float(torch.addcmul(var, mu, mu).sub_(lv).sum()) - mu.numel()) * (0.5 * C / B)

        # backward, from the logits to the input layer; d_a and d_b take turns as the running
        # gradient
        d_a, d_b, work_h = b["d_a"], b["d_b"], b["work_h"]
        d_y = p.sub_(xb).div_(B)
        self._linear_grads(grads[ld3], b["p_t"], d_y, g2)
        _tanh_backward_out(torch.mm(d_y, ld3.weight, out=work_h), g2, grad_input=d_a)
        self._linear_grads(grads[ld2], b["d_a_t"], d_a, g1)
        _tanh_backward_out(torch.mm(d_a, ld2.weight, out=work_h), g1, grad_input=d_b)
        self._linear_grads(grads[ld1], b["d_b_t"], d_b, z)
        d_z = torch.mm(d_b, ld1.weight, out=b["d_z"])
        torch.add(d_z, mu, alpha=C / B, out=b["d_mu"])
        torch.mul(var, 0.5 * C / B, out=b["d_lv"]).sub_(0.5 * C / B).addcmul_(d_z, noise, value=0.5)
        self._linear_grads((self._heads_gw, self._heads_gb), b["d_heads_t"], b["d_heads"], h2)
        _tanh_backward_out(torch.mm(b["d_heads"], self._heads_w, out=work_h), h2, grad_input=d_a)
        self._linear_grads(grads[le2], b["d_a_t"], d_a, h1)
        _tanh_backward_out(torch.mm(d_a, le2.weight, out=work_h), h1, grad_input=d_b)
        self._linear_grads(grads[le1], b["d_b_t"], d_b, xb)
        return VAELoss(reconstruction + kl, reconstruction, kl)


def manual_train_epoch(
    model: VAE,
    optimizer: torch.optim.Optimizer,
    x_train: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    C: float = 1.0,
    k: int = 1,
) -> dict:
    """:func:`vae_lesson.train_epoch` with the hand-derived gradients: the same shuffle, the same
    eps, the same result.

    ``vl.train(..., backward="manual")`` calls it after checking :func:`unsupported_reason`.
    """
    model.train()
    step = ManualStep(model, C)
    adam_step = _AdamStep(optimizer)
    sums = [0.0, 0.0, 0.0]
    order = torch.randperm(len(x_train), generator=generator)
    try:
        for batch, index in enumerate(order.split(batch_size)):
            values = step(x_train, index)
            if not math.isfinite(values[0]):
                raise NonFiniteLossError(f"the loss became {values[0]} at batch {batch + 1}")
            adam_step()
            sums = [s + v * len(index) for s, v in zip(sums, values)]
    finally:
        step.release()
    return {name: total / len(x_train) for name, total in zip(VAELoss._fields, sums)}


class _AdamStep:
    """``optimizer.step()`` for the fused Adam of :func:`_adam` in the manual path, without its
    per-call bookkeeping.

    ``torch.optim.Adam.step`` re-collects its state lists and re-checks its options on every call: a
    few percent of a step of the book's VAE on a CPU. The first call is ``optimizer.step()`` itself
    (which creates the state); after it, this calls the same fused kernel on the optimizer's own
    state tensors, collected once. The weights, ``optimizer.state_dict()`` and the checkpoints are
    exactly those of ``optimizer.step()`` (``tests/unit/test_manual_backward.py`` compares them bit
    for bit). Only for the manual path, whose weights all have a gradient at every step and whose
    optimizer nobody else touches during training; anything but plain fused Adam, or a torch without
    the kernel, keeps ``optimizer.step()``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self._plan = (
            None  # None: not captured yet; False: use optimizer.step(); else the kernel's arguments
        )

    def _capture(self):
        kernel = getattr(torch, "_fused_adam_", None)
        groups, state = self.optimizer.param_groups, self.optimizer.state
        if kernel is None or len(groups) != 1:
            return False
        g = groups[0]
        plain = not (
            g.get("amsgrad")
            or g.get("maximize")
            or g.get("capturable")
            or g.get("differentiable")
            or g.get("decoupled_weight_decay")
        )
        params = list(g["params"])
        if not (
            g.get("fused")
            and plain
            and not isinstance(g["lr"], torch.Tensor)
            and all(p.grad is not None and "exp_avg" in state.get(p, {}) for p in params)
        ):
            return False
        lists = [
            params,
            [p.grad for p in params],
            [state[p]["exp_avg"] for p in params],
            [state[p]["exp_avg_sq"] for p in params],
            [],
            [state[p]["step"] for p in params],
        ]
        beta1, beta2 = g["betas"]
        options = dict(
            amsgrad=False,
            lr=g["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=g["weight_decay"],
            eps=g["eps"],
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )
        return kernel, lists, options

    def __call__(self) -> None:
        if not self._plan:
            self.optimizer.step()
            if self._plan is None:
                self._plan = self._capture()
            return
        kernel, lists, options = self._plan
        with torch.no_grad():
            torch._foreach_add_(
                lists[-1], 1
            )  # the step counts, as torch's fused Adam increments them
            kernel(*lists, **options)
