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

Layout: N responses in G groups; without offsets, consecutive pairs (chosen, rejected, chosen, rejected, ...), or
offsets = [0, ..., N] (G + 1 group boundaries), which the group losses (Loss.group_size == 0) require. The gradients are those of the reduced loss (the mean over the G
groups by default); the per-group losses are before reduction. Errors (a bad spec, a missing field, a NaN, a wrong
shape) raise ValueError with a message that names the argument.

PyTorch: `import rpo.torch` for rpo.torch.loss, a differentiable torch function (this module does not import torch).
"""
from ._rpo import Loss, Result, __version__, losses

__all__ = ["Loss", "Result", "losses", "__version__"]
