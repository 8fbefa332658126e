"""Property-based testing helpers: hypothesis strategies for tensors, shapes and conv/pool
configurations, :func:`assert_gradients`, which gradchecks a function over drawn examples, and
:func:`check_vmap`, which checks a vmapped function (a batching rule) against a loop over the batch.

This is the public module; the code lives in :mod:`tinygrad_cnn.check.strategies`. Needs
``hypothesis`` (a dev extra: ``pip install 'tinygrad_cnn[dev]'``).

Example::

    from tinygrad_cnn.testing import assert_gradients, tensors, shapes

    assert_gradients(lambda x: (x * x.sigmoid()).sum(), tensors(shape=shapes(max_dims=3)))

A failing function is reported with the smallest example hypothesis could shrink it to and
the :class:`~tinygrad_cnn.GradcheckResult` of that example.
"""
from .check import strategies
from .check.strategies import (  # noqa: F401  (re-exported)
    Conv2dConfig,
    Pool2dConfig,
    assert_gradients,
    broadcastable_shapes,
    conv2d_configs,
    conv2d_inputs,
    pool2d_configs,
    pool2d_inputs,
    shapes,
    tensors,
)
from .check.vmap_check import check_vmap  # noqa: E402, F401  (re-exported)

__all__ = list(strategies.__all__) + ["check_vmap"]  # the strategies' names are listed once there
