"""The affine map :func:`linear`, PyTorch's layout (weight (out_features, in_features))."""
from __future__ import annotations

from typing import Any

from ...autograd.grad_mode import function_scope
from ...ops import functions as OF
from ...tensor import Tensor, as_tensor

__all__ = ["linear"]


@function_scope("linear")
def linear(input: Any, weight: Any, bias: Any = None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias``: input (*, in_features), weight (out_features, in_features),
    bias (out_features,) -> (*, out_features), as in PyTorch.

    >>> linear(ones(5, 3), ones(2, 3), tensor([0.0, 1.0])).tolist()[0]
    [3.0, 4.0]
    """
    x = as_tensor(input)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight expects "
            f"{weight.shape[-1]} (weight shape {weight.shape})."
        )
    # weight.T is a view sharing the weight's version counter: an optimizer step between forward and
    # backward is still caught by the saved-array check.
    y = OF.matmul(x, OF.transpose(weight, -1, -2))
    return y + bias if bias is not None else y
