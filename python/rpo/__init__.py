"""rpo: preference-optimization losses (DPO, IPO, SimPO, RPO, ...) with analytic gradients.

The Python binding of the C++ library rpo (its run-time entry point, rpo/spec.hpp). A loss is named by a spec string,
parsed once, and evaluated on batches of numpy arrays:

    >>> import numpy as np, rpo
    >>> loss = rpo.Loss("dpo(beta=0.2)")
    >>> r = loss.value_and_grad(np.array([-12.0, -20.0]), ref_logp=np.array([-13.5, -19.0]))
    >>> round(r.loss, 9), r.grad_logp.round(9).tolist()
    (0.474076984, [-0.075508134, 0.075508134])

Names:
    Loss(spec)          a loss; .name, .spec, .composition, .inputs, .group_size, .min_group_size,
                        .value_and_grad(logp, ref_logp=None, length=None, reward=None, offsets=None,
                                        reduction="mean", count=None) -> Result
    Result              .loss (float), .group_loss, .grad_logp, .grad_ref_logp (numpy arrays)
    losses()            every loss a spec can name, with its parameters and their defaults
    __version__         the version of the C++ library the module was built from

Batch methods by spec, one whole batch per call (the registry of rpo-eval --batch; docs/rpo_eval.md#batch):
    evaluate_batch(spec, **fields) -> dict ("loss" and the method's outputs as numpy arrays), e.g.
        evaluate_batch("kto(beta=0.1)", logp=..., ref_logp=..., desirable=..., z0=0.0)
        specs: kto, bco_unpaired, aot, gamma_po, wpo(loss=SPEC), ld_dpo(alpha=A, loss=SPEC)
    batch_methods()     every batch method, its spec with defaults, fields and parameters

The same methods as functions of their own (float32 or float64, other reductions):
    kto(logp, ref_logp, desirable, z0=0.0, beta=0.1, lambda_desirable=1.0, lambda_undesirable=1.0,
        reduction="mean", count=None) -> KTOResult (.loss, .response_loss, .grad_logp, .grad_ref_logp)
    kto_reference_point(mismatched_logp, mismatched_ref_logp) -> float (KTO's z0)
    bco(logp, ref_logp, desirable, delta=0.0, weight=None, beta=0.1, reduction="mean", count=None)
                        -> KTOResult (unpaired BCO; delta the running mean of rewards, weight the UDM weights)
    aot(logp, ref_logp, offsets=None, beta=0.1, epsilon=0.0, unpaired=False, reduction="mean", count=None)
                        -> Result (group_loss: the terms of each rank)
    evaluate_weighted(loss, group_weights, logp, ref_logp=None, length=None, reward=None, offsets=None,
                      reduction="mean", count=None) -> Result (an rpo.Loss with a constant weight per group: WPO)
    gamma_po_gaps(logp, ref_logp=None, length=None, offsets=None, beta=0.1, gamma_beta_ratio=0.5, simpo=False)
    gamma_po(margins, logp, ref_logp=None, length=None, offsets=None, beta=0.1, gamma_beta_ratio=0.5,
             simpo=False, reduction="mean", count=None) -> Result
    GammaPOMargins(beta=0.1, gamma_beta_ratio=0.5, simpo=False, tau=10.0, iterations=20, ...)
                        .compute(gaps) -> margins, .push(gaps), .clear(), .queue, .gamma_0
    wpo_weights(logits, target, mask=None)                    logits (S, T, V) -> S weights
    length_desensitized_logp(token_logp, mask, alpha)         (S, T) -> S sequence log-probs (LD-DPO)
    length_desensitized_logp_backward(grad_logp, mask, alpha, tokens=None) -> (S, T)

The fused pass, logits to gradient, for any rpo.Loss (two streamed passes, O(S * T) extra memory):
    evaluate_tokens(loss, logits, target, mask=None, ref_logp=None, reward=None, offsets=None, per_sequence="sum",
                    reduction="mean", count=None, in_place=False) -> TokensResult (.loss, .grad_logits, .logp,
                                                                                   .length, .group_loss)

Layout: N responses in G groups; without offsets, consecutive pairs (chosen, rejected, chosen, rejected, ...), or
offsets = [0, ..., N] (G + 1 group boundaries), which the group losses (Loss.group_size == 0) require. The gradients are those of the reduced loss (the mean over the G
groups by default); the per-group losses are before reduction. Errors (a bad spec, a missing field, a NaN, a wrong
shape) raise ValueError with a message that names the argument.

PyTorch: `import rpo.torch` for rpo.torch.loss and rpo.torch.token_loss, differentiable torch functions (this module
does not import torch).
"""
from ._rpo import (GammaPOMargins, KTOResult, Loss, Result, TokensResult, __version__, aot, batch_methods, bco,
                   evaluate_batch, evaluate_tokens, evaluate_weighted, gamma_po, gamma_po_gaps, kto, kto_reference_point,
                   length_desensitized_logp, length_desensitized_logp_backward, losses, wpo_weights)

__all__ = ["Loss", "Result", "losses", "__version__", "kto", "kto_reference_point", "KTOResult", "bco", "aot",
           "evaluate_weighted", "gamma_po_gaps", "gamma_po", "GammaPOMargins", "wpo_weights",
           "length_desensitized_logp", "length_desensitized_logp_backward", "evaluate_tokens", "TokensResult",
           "evaluate_batch", "batch_methods"]
