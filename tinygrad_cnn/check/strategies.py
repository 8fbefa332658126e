"""Property-based testing helpers: hypothesis strategies for tensors, shapes and conv/pool
configurations, and :func:`assert_gradients`, which gradchecks a function over drawn examples.

Needs ``hypothesis`` (a dev extra: ``pip install 'tinygrad_cnn[dev]'``). Import it as
:mod:`tinygrad_cnn.testing`, the public module that re-exports everything here.

Example::

    from tinygrad_cnn.testing import assert_gradients, tensors, shapes

    assert_gradients(lambda x: (x * x.sigmoid()).sum(), tensors(shape=shapes(max_dims=3)))

A failing function is reported with the smallest example hypothesis could shrink it to and
the :class:`~tinygrad_cnn.GradcheckResult` of that example.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "tinygrad_cnn.testing needs hypothesis, a development extra: pip install 'tinygrad_cnn[dev]' (or pip install hypothesis)."
    ) from e

from ..kernels.geometry import conv_output_size, pool_output_size
from ..pytree import tree_leaves
from ..tensor import Tensor
from .gradcheck import gradcheck, gradgradcheck

__all__ = [
    "Conv2dConfig",
    "Pool2dConfig",
    "assert_gradients",
    "broadcastable_shapes",
    "conv2d_configs",
    "conv2d_inputs",
    "pool2d_configs",
    "pool2d_inputs",
    "shapes",
    "tensors",
]


def shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes, e.g. ``(2, 1, 3)``; shrinks towards fewer, smaller dimensions.

    Example: ``shapes(max_dims=2, max_side=5)``.
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def _elements(dtype: np.dtype, min_value: float, max_value: float) -> st.SearchStrategy[float]:
    width: Literal[16, 32, 64] = 16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
    return st.floats(min_value=min_value, max_value=max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width)


def tensors(
    shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]] | None = None,
    dtype: Any = np.float64,
    elements: st.SearchStrategy[float] | None = None,
    *,
    min_value: float = -3.0,
    max_value: float = 3.0,
    grid: float | None = 1 / 64,
    requires_grad: bool = True,
    unique: bool = False,
) -> st.SearchStrategy[Tensor]:
    """Tensors of ``shape`` (a tuple or a strategy; default :func:`shapes`) and ``dtype``.

    Elements are multiples of ``grid`` in [min_value, max_value] (``grid=None``: any finite
    float) unless ``elements`` is given. The grid is for gradient checks: hypothesis loves 0 and
    repeated values, so kinks (relu at 0) and ties (max) are exercised *exactly*, where gradcheck
    recognises them; what it cannot judge is a point 1e-270 away from several kinks at once, which
    arbitrary floats produce and no finite difference can resolve. ``unique=True`` draws
    distinct elements.

    Example: ``tensors(shape=(2, 3), min_value=0.1, max_value=2.0)`` for an input to ``log``.
    """
    dt = np.dtype(dtype)
    if dt.kind != "f" and requires_grad:
        raise ValueError(f"tensors: dtype {dt} cannot require grad; pass requires_grad=False or a float dtype.")
    if elements is None:
        if dt.kind != "f":
            elements = st.integers(int(min_value), int(max_value))
        elif grid is not None:
            lo, hi = int(np.ceil(min_value / grid)), int(np.floor(max_value / grid))
            elements = st.integers(lo, hi).map(lambda i: i * grid)
        else:
            elements = _elements(dt, min_value, max_value)
    shp = shapes() if shape is None else shape
    arrays = hnp.arrays(dt, shp, elements=elements, unique=unique)
    return arrays.map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(
    min_dims: int = 0, max_dims: int = 4, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Pairs of shapes that broadcast together, e.g. ``((3, 1), (2, 1, 4))``.

    Example: ``broadcastable_shapes(max_dims=3).flatmap(lambda s: st.tuples(tensors(s[0]), tensors(s[1])))``.
    """
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side).map(
        lambda b: (b.input_shapes[0], b.input_shapes[1])
    )


# ---- convolution and pooling configurations ------------------------------------------------------
@dataclass(frozen=True)
class Conv2dConfig:
    """A valid ``conv2d`` call: input (N, C, H, W), weight (C_out, C/groups, KH, KW), optional
    bias (C_out,), and PyTorch's stride/padding/dilation/groups. ``kwargs()`` gives the keyword
    arguments of ``F.conv2d``; ``output_shape`` is what it must return."""

    input_shape: tuple[int, int, int, int]
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int
    bias: bool

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.input_shape[1] // self.groups, *self.kernel_size)

    @property
    def bias_shape(self) -> tuple[int] | None:
        return (self.out_channels,) if self.bias else None

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        n, _, h, w = self.input_shape
        geometry = zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation)
        oh, ow = (conv_output_size(s, k, st_, p, d) for s, k, st_, p, d in geometry)
        return (n, self.out_channels, oh, ow)

    def kwargs(self) -> dict:
        """The keyword arguments of ``F.conv2d`` for this configuration (stride, padding, dilation, groups)."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation, "groups": self.groups}


@st.composite
def conv2d_configs(
    draw: Any, max_batch: int = 2, max_channels: int = 4, max_size: int = 7, max_kernel: int = 3, max_stride: int = 2,
    max_padding: int = 2, max_dilation: int = 2, groups: bool = True,
) -> Conv2dConfig:
    """Valid :class:`Conv2dConfig` s (every output dimension >= 1); shrinks towards 1x1 kernels,
    stride 1, no padding. Example: ``conv2d_configs(max_size=5, groups=False)``."""
    g = draw(st.integers(1, max(1, max_channels // 2))) if groups else 1
    c_in = g * draw(st.integers(1, max(1, max_channels // g)))
    c_out = g * draw(st.integers(1, max(1, max_channels // g)))
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    s = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    d = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation)))
    p = (draw(st.integers(0, max_padding)), draw(st.integers(0, max_padding)))
    # The smallest input that still gives one output pixel, up to max_size.
    lo = [max(1, d_ * (k_ - 1) + 1 - 2 * p_) for k_, d_, p_ in zip(k, d, p)]
    hw = [draw(st.integers(lo_, max(lo_, max_size))) for lo_ in lo]
    n = draw(st.integers(1, max_batch))
    return Conv2dConfig((n, c_in, hw[0], hw[1]), c_out, k, s, p, d, g, draw(st.booleans()))


@dataclass(frozen=True)
class Pool2dConfig:
    """A valid ``max_pool2d`` (``kind='max'``) or ``avg_pool2d`` (``kind='avg'``) call on an
    input of ``input_shape``; ``kwargs()`` are its keyword arguments, ``output_shape`` the result's."""

    kind: str
    input_shape: tuple[int, int, int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        n, c, h, w = self.input_shape
        oh, ow = (
            pool_output_size(s, k, st_, p, d, self.ceil_mode)
            for s, k, st_, p, d in zip((h, w), self.kernel_size, self.stride, self.padding, self.dilation)
        )
        return (n, c, oh, ow)

    def kwargs(self) -> dict:
        """The keyword arguments of the pooling function (kernel_size, stride, padding, ceil_mode; dilation for max)."""
        kw: dict = {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding, "ceil_mode": self.ceil_mode}
        if self.kind == "max":
            kw["dilation"] = self.dilation
        else:
            kw["count_include_pad"] = self.count_include_pad
        return kw


@st.composite
def pool2d_configs(
    draw: Any, kind: str = "max", max_batch: int = 2, max_channels: int = 3, max_size: int = 7, max_kernel: int = 3,
    max_stride: int = 3, max_dilation: int = 2,
) -> Pool2dConfig:
    """Valid :class:`Pool2dConfig` s as PyTorch accepts them: padding at most half the kernel,
    dilation only for max pooling, ceil_mode never starting a window in the padding only. Every
    window also covers at least one input element (a dilated window can straddle a small input
    and see padding only: its max is -inf, its average of nothing undefined, so no gradient).

    Example: ``pool2d_configs("avg", max_size=6)``.
    """
    if kind not in ("max", "avg"):
        raise ValueError(f"pool2d_configs: kind must be 'max' or 'avg', got {kind!r}.")
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    s = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    d = (draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))) if kind == "max" else (1, 1)
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    lo = [max(1, d_ * (k_ - 1) + 1 - 2 * p_) for k_, d_, p_ in zip(k, d, p)]
    hw = [draw(st.integers(lo_, max(lo_, max_size))) for lo_ in lo]
    shape = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)), hw[0], hw[1])
    ceil_mode = draw(st.booleans())
    for ax in (0, 1):
        while not _windows_see_input(hw[ax], k[ax], s[ax], p[ax], d[ax], ceil_mode):
            hw[ax] += 1  # terminates: once the input is longer than a dilated kernel, every window sees some of it
    shape = (shape[0], shape[1], hw[0], hw[1])
    return Pool2dConfig(kind, shape, k, s, p, d, ceil_mode, draw(st.booleans()) if kind == "avg" else True)


def _windows_see_input(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> bool:
    """Whether every pooling window along one axis covers at least one element of the input."""
    n_out = pool_output_size(size, k, s, p, d, ceil_mode)
    return all(any(0 <= o * s - p + j * d < size for j in range(k)) for o in range(n_out))


@st.composite
def conv2d_inputs(draw: Any, configs: st.SearchStrategy[Conv2dConfig] | None = None, dtype: Any = np.float64) -> tuple:
    """``(x, weight, bias_or_None, config)`` for ``F.conv2d(x, weight, bias, **config.kwargs())``.

    Example: ``assert_gradients(lambda a: F.conv2d(a[0], a[1], a[2], **a[3].kwargs()), conv2d_inputs())``.
    """
    cfg = draw(configs if configs is not None else conv2d_configs())
    x = draw(tensors(cfg.input_shape, dtype))
    w = draw(tensors(cfg.weight_shape, dtype))
    b = draw(tensors(cfg.bias_shape, dtype)) if cfg.bias else None
    return x, w, b, cfg


@st.composite
def pool2d_inputs(draw: Any, kind: str = "max", configs: st.SearchStrategy[Pool2dConfig] | None = None, dtype: Any = np.float64) -> tuple:
    """``(x, config)`` for ``F.max_pool2d(x, **config.kwargs())`` (or avg_pool2d with kind='avg')."""
    cfg = draw(configs if configs is not None else pool2d_configs(kind))
    return draw(tensors(cfg.input_shape, dtype)), cfg


# ---- the property ------------------------------------------------------------------------------
def assert_gradients(
    fn: Callable,
    *strategies: st.SearchStrategy,
    gradgrad: bool = True,
    max_examples: int | None = None,
    **gradcheck_kwargs: Any,
) -> None:
    """Run :func:`gradcheck` (and :func:`gradgradcheck` when ``gradgrad``) on ``fn(*drawn)`` for
    examples drawn from ``strategies`` (one per positional argument of ``fn``).

    On failure hypothesis shrinks to a minimal failing example and this raises
    :class:`~tinygrad_cnn.GradcheckError` for it (hypothesis prints the example). Extra keyword
    arguments go to gradcheck (``atol``, ``fast_mode``, ...). ``max_examples`` overrides the active
    hypothesis settings profile.

    Example::

        assert_gradients(lambda a, b: a * b, *[tensors(shape=(2, 3))] * 2)
    """
    if not strategies:
        raise TypeError("assert_gradients: pass one hypothesis strategy per argument of fn, e.g. assert_gradients(fn, tensors()).")
    for s in strategies:
        if not isinstance(s, st.SearchStrategy):
            raise TypeError(f"assert_gradients: expected hypothesis strategies, got {type(s).__name__}; wrap constants in st.just(...).")

    @given(st.tuples(*strategies))
    def check(args: tuple) -> None:
        if not any(isinstance(a, Tensor) and a.requires_grad for a in tree_leaves(args)):
            return  # nothing to check in this example (e.g. only integer tensors were drawn)
        gradcheck(fn, args, **gradcheck_kwargs)
        if gradgrad:
            gradgradcheck(fn, args, **gradcheck_kwargs)

    current = settings()
    overrides: dict = {"deadline": None, "suppress_health_check": list(current.suppress_health_check) + [HealthCheck.too_slow]}
    if max_examples is not None:
        overrides["max_examples"] = max_examples
    settings(current, **overrides)(check)()

