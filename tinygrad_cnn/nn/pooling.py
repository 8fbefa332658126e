"""Pooling and resampling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Upsample (calling nn.functional)."""

from __future__ import annotations

from typing import Any

from ..kernels.geometry import pair
from ..tensor import Tensor
from . import functional as F
from .module import Module


class MaxPool2d(Module):
    """Max pooling (N, C, H, W) -> (N, C, OH, OW); ``stride`` defaults to ``kernel_size``.

    Example::

        pool = MaxPool2d(2)            # 2x2 windows, stride 2: (N, 30, 24, 24) -> (N, 30, 12, 12)
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = pair("MaxPool2d", "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("MaxPool2d", "stride", stride)
        self.padding = pair("MaxPool2d", "padding", padding)
        self.dilation = pair("MaxPool2d", "dilation", dilation)
        self.ceil_mode, self.return_indices = bool(ceil_mode), bool(return_indices)

    def forward(self, x: Any) -> Any:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        return s


class AvgPool2d(Module):
    """Average pooling (N, C, H, W) -> (N, C, OH, OW); ``stride`` defaults to ``kernel_size``.

    Example::

        pool = AvgPool2d(2)            # LeNet's subsampling: (N, 6, 28, 28) -> (N, 6, 14, 14)
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = pair("AvgPool2d", "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else pair("AvgPool2d", "stride", stride)
        self.padding = pair("AvgPool2d", "padding", padding)
        self.ceil_mode, self.count_include_pad = bool(ceil_mode), bool(count_include_pad)
        if divisor_override is not None:
            if isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override == 0:
                raise ValueError(f"AvgPool2d: divisor_override must be a non-zero int or None, got {divisor_override!r}.")
            if ceil_mode:
                # The windows that ceil_mode adds past the padded edge are partial; their sums are
                # not recoverable from the averages this layer computes.
                raise NotImplementedError("AvgPool2d: divisor_override together with ceil_mode=True is not supported here; "
                                          "use ceil_mode=False (pad the input with F.pad for the extra windows).")
        self.divisor_override = divisor_override

    def forward(self, x: Any) -> Tensor:
        if self.divisor_override is not None:
            # Every window holds kh*kw elements (padding included, no ceil_mode): sum = mean * kh*kw.
            kh, kw = self.kernel_size
            mean = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, False, True)
            return mean * (kh * kw / self.divisor_override)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.ceil_mode:
            s += ", ceil_mode=True"
        if not self.count_include_pad:
            s += ", count_include_pad=False"
        return s


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed (OH, OW) whatever the input size: (N, C, H, W) -> (N, C, OH, OW).

    Example::

        gap = AdaptiveAvgPool2d(1)     # global average pooling: (N, C, H, W) -> (N, C, 1, 1)
    """

    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Any) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Upsample(Module):
    """Resize (N, C, H, W) images to ``size`` or by ``scale_factor`` with ``mode`` 'nearest' or
    'bilinear'; see :func:`tinygrad_cnn.nn.functional.interpolate`.

    Example::

        up = Upsample(scale_factor=2, mode="bilinear")   # (N, C, 7, 7) -> (N, C, 14, 14)
    """

    def __init__(
        self,
        size: Any = None,
        scale_factor: Any = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None:
        super().__init__()
        F.validation.check_option("Upsample", "mode", mode, ("nearest", "bilinear"))
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x: Any) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners, self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
