"""rpo.torch: rpo's losses as differentiable PyTorch functions.

    >>> import torch, rpo.torch
    >>> logp = torch.tensor([-12.0, -20.0, -30.0, -28.0], dtype=torch.float64, requires_grad=True)
    >>> ref_logp = torch.tensor([-13.5, -19.0, -31.0, -27.0], dtype=torch.float64)
    >>> loss = rpo.torch.loss("dpo(beta=0.2)", logp, ref_logp)
    >>> loss.backward()

The loss and its gradient are computed by the C++ library (analytic gradients, not autograd through a graph of
elementary operations): forward evaluates the batch once and keeps the gradient, backward multiplies it by the
upstream gradient. Importing this module imports torch; `import rpo` alone does not.
"""
import functools

import numpy as np
import torch

from . import Loss, evaluate_tokens

__all__ = ["loss", "token_loss"]


@functools.lru_cache(maxsize=256)
def _parse(spec):
    return Loss(spec)


def _loss_of(spec):
    if isinstance(spec, Loss):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"rpo.torch.loss: spec must be a str or an rpo.Loss, but got {type(spec).__name__}")
    return _parse(spec)


def _to_numpy(value, dtype):
    """A tensor (any device) or array-like as a numpy array; `dtype` for the float fields, None for offsets."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if dtype is not None:
            value = value.to(dtype)
        return value.cpu().numpy()
    return np.asarray(value)


class _Function(torch.autograd.Function):
    """loss(logp, ref_logp) with the rest constant; backward is upstream gradient x the library's gradient."""

    @staticmethod
    def forward(ctx, rpo_loss, options, logp, ref_logp):
        length, reward, offsets, reduction, count = options
        # float32 stays float32; every other dtype is computed in float64 (what the numpy path does too).
        compute = torch.float32 if logp.dtype == torch.float32 else torch.float64
        result = rpo_loss.value_and_grad(
            _to_numpy(logp, compute), ref_logp=_to_numpy(ref_logp, compute), length=_to_numpy(length, compute),
            reward=_to_numpy(reward, compute), offsets=_to_numpy(offsets, None), reduction=reduction, count=count)
        ctx.grad_logp = ctx.grad_ref_logp = None
        if ctx.needs_input_grad[2]:
            ctx.grad_logp = torch.from_numpy(result.grad_logp).to(device=logp.device, dtype=logp.dtype)
        if ref_logp is not None and ctx.needs_input_grad[3]:
            ctx.grad_ref_logp = torch.from_numpy(result.grad_ref_logp).to(device=ref_logp.device, dtype=ref_logp.dtype)
        out_dtype = logp.dtype if logp.dtype.is_floating_point else compute
        return torch.tensor(result.loss, dtype=out_dtype, device=logp.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        grad_logp = grad_ref_logp = None
        if ctx.grad_logp is not None:
            grad_logp = grad_output.to(ctx.grad_logp.dtype) * ctx.grad_logp
        if ctx.grad_ref_logp is not None:
            grad_ref_logp = grad_output.to(ctx.grad_ref_logp.dtype) * ctx.grad_ref_logp
        return None, None, grad_logp, grad_ref_logp


def loss(spec, logp, ref_logp=None, length=None, reward=None, offsets=None, reduction="mean", count=None):
    """The reduced loss of a batch, a 0-d tensor that gradients flow back through.

    spec: a spec string ("dpo(beta=0.1)", see rpo.losses()), parsed once and cached, or an rpo.Loss.
    logp, ref_logp, length, reward: 1-D tensors of the N responses' fields (those in rpo.Loss(spec).inputs are
        required); without offsets, consecutive pairs (chosen, rejected, chosen, ...).
    offsets: G + 1 integer group boundaries from 0 to N, or None (pairs only: group losses require offsets).
    reduction: "mean" over the G groups (default), "sum", or "sum_over" with count, the number of groups of the
        whole global batch (for gradient accumulation and data parallelism).

    Gradients flow to logp and to ref_logp (when they require grad). length, reward and offsets are constants: the
    rewards and the reference are constants of the objective, and ref_logp's gradient is given only for callers that
    want it. The result has logp's dtype and device. float32 inputs are computed in float32, everything else in
    float64. The library runs on the CPU: CUDA tensors are copied to the host, and the gradients copied back to each
    input's device (one synchronising copy each way per call). Raises ValueError, as rpo.Loss.value_and_grad does.
    """
    if not isinstance(logp, torch.Tensor):
        raise TypeError(f"rpo.torch.loss: logp must be a torch.Tensor, but got {type(logp).__name__}")
    if ref_logp is not None and not isinstance(ref_logp, torch.Tensor):
        ref_logp = torch.as_tensor(ref_logp, dtype=logp.dtype if logp.dtype.is_floating_point else None)
    return _Function.apply(_loss_of(spec), (length, reward, offsets, reduction, count), logp, ref_logp)


class _TokenFunction(torch.autograd.Function):
    """token_loss(logits) with the rest constant; backward is upstream gradient x the library's d loss / d logits."""

    @staticmethod
    def forward(ctx, rpo_loss, options, logits):
        target, mask, ref_logp, reward, offsets, per_sequence, reduction, count = options
        compute = torch.float32 if logits.dtype == torch.float32 else torch.float64
        result = evaluate_tokens(
            rpo_loss, _to_numpy(logits, compute), _to_numpy(target, torch.int64), mask=_to_numpy(mask, None),
            ref_logp=_to_numpy(ref_logp, compute), reward=_to_numpy(reward, compute), offsets=_to_numpy(offsets, None),
            per_sequence=per_sequence, reduction=reduction, count=count)
        ctx.grad_logits = None
        if ctx.needs_input_grad[2]:
            ctx.grad_logits = torch.from_numpy(result.grad_logits).to(device=logits.device, dtype=logits.dtype)
        return torch.tensor(result.loss, dtype=logits.dtype, device=logits.device)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        grad_logits, ctx.grad_logits = ctx.grad_logits, None
        # loss.backward() seeds 1: the library's gradient is the answer, without another pass over (S, T, V).
        if grad_logits is not None and not (grad_output.numel() == 1 and float(grad_output) == 1.0):
            grad_logits = grad_output.to(grad_logits.dtype) * grad_logits
        return None, None, grad_logits


def token_loss(spec, logits, target, mask=None, ref_logp=None, reward=None, offsets=None, per_sequence="sum",
               reduction="mean", count=None):
    """The reduced loss from the logits, a 0-d tensor whose gradient flows to the logits: the fused pass of
    rpo.evaluate_tokens (log-softmax, gather, masked sum, the loss, and the chain rule back to the logits, computed
    by the C++ library in two streamed passes, without autograd's N x T x V intermediates).

    spec: a spec string or an rpo.Loss. logits: (S, T, V) floating tensor, position t holding the logits that predict
        target[s, t] (shifted, as trainers do); float32 is computed in float32, other dtypes in float64.
    target: (S, T) integer tensor, ids in [0, V) at response positions (masked ones are not read; -100 is fine).
    mask: (S, T) boolean or integer tensor (nonzero: a response token), or None for every position.
    ref_logp, reward: S sequence-level constants, if the loss reads them (ref_logp made the way per_sequence says).
    offsets: G + 1 group boundaries over the S sequences, or None for consecutive (chosen, rejected) pairs.
    per_sequence: "sum" (default) or "mean" over the response length; reduction, count: as rpo.torch.loss.

    Only logits get a gradient; its memory is one (S, T, V) array, kept from forward to backward. The result has
    logits' dtype and device; CUDA tensors are copied to the host and the gradient copied back. Raises ValueError,
    as rpo.evaluate_tokens does.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"rpo.torch.token_loss: logits must be a torch.Tensor, but got {type(logits).__name__}")
    if not logits.dtype.is_floating_point:
        raise TypeError(f"rpo.torch.token_loss: logits must be a floating tensor, but has dtype {logits.dtype}")
    return _TokenFunction.apply(_loss_of(spec), (target, mask, ref_logp, reward, offsets, per_sequence, reduction, count),
                                logits)
