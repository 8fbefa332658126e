"""Convolution layers: Conv2d and ConvTranspose2d (calling ``nn.functional.conv2d`` /
``conv_transpose2d``; the im2col implementation lives in :mod:`tinygrad_cnn.ops.conv`)."""

from __future__ import annotations

from typing import Any

from ..kernels.geometry import pair
from ..tensor import Tensor
from . import functional as F
from .layers import add_weight_and_bias, factory_dtype
from .module import Module


def _check_channels(op: str, in_channels: int, out_channels: int, groups: int) -> None:
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"{op}: in_channels and out_channels must be positive, got {in_channels}, {out_channels}.")
    if groups < 1 or in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{op}: groups={groups} must be positive and divide in_channels ({in_channels}) and out_channels ({out_channels})."
        )


class Conv2d(Module):
    """2-D convolution: (N, C_in, H, W) -> (N, C_out, OH, OW), ``OH = (H + 2p - d(k-1) - 1) // s + 1``.

    ``weight`` (C_out, C_in/groups, KH, KW), ``bias`` (C_out,), initialised as in PyTorch
    (U(+-1/sqrt(fan_in))); ``seed`` (keyword only) makes it reproducible. ``groups`` splits the
    channels into independent groups (AlexNet's two-GPU layers use groups=2). ``padding_mode``
    'zeros', 'reflect', 'replicate' or 'circular' (the input is padded with ``F.pad`` first, as
    PyTorch does); ``device`` must be the CPU, ``dtype`` defaults to float32.

    Example::

        conv = Conv2d(1, 30, kernel_size=5)          # the chapter's first layer
        y = conv(x)                                  # x (N, 1, 28, 28) -> y (N, 30, 24, 24)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Any = None,
    ) -> None:
        super().__init__()
        dtype = factory_dtype("Conv2d", device, dtype)
        _check_channels("Conv2d", in_channels, out_channels, groups)
        self.padding_mode = F.validation.check_option("Conv2d", "padding_mode", padding_mode, ("zeros", "reflect", "replicate", "circular"))
        if padding_mode != "zeros" and isinstance(padding, str):
            raise ValueError(f"Conv2d: padding={padding!r} works with padding_mode='zeros' only; give the padding as int(s).")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = pair("Conv2d", "kernel_size", kernel_size)
        self.stride = pair("Conv2d", "stride", stride)
        self.padding = padding if isinstance(padding, str) else pair("Conv2d", "padding", padding)
        self.dilation = pair("Conv2d", "dilation", dilation)
        weight_shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        add_weight_and_bias(self, weight_shape, self.out_channels if bias else None, dtype, seed)

    def forward(self, x: Any) -> Tensor:
        if self.padding_mode != "zeros":
            ph, pw = self.padding[0], self.padding[1]  # ints: a string padding needs padding_mode='zeros'
            x = F.pad(x, (pw, pw, ph, ph), mode=self.padding_mode)
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return _conv_repr(self, padding=(0, 0), dilation=(1, 1), groups=1, padding_mode="zeros")


class ConvTranspose2d(Module):
    """Transposed convolution (the gradient of Conv2d w.r.t. its input):
    (N, C_in, H, W) -> (N, C_out, (H-1)s - 2p + d(k-1) + output_padding + 1, ...).

    ``weight`` (C_in, C_out/groups, KH, KW) as in PyTorch, ``bias`` (C_out,).

    Example::

        up = ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)
        y = up(x)                                    # x (N, 16, 7, 7) -> y (N, 8, 14, 14)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        seed: Any = None,
    ) -> None:
        super().__init__()
        dtype = factory_dtype("ConvTranspose2d", device, dtype)
        _check_channels("ConvTranspose2d", in_channels, out_channels, groups)
        if padding_mode != "zeros":
            raise ValueError(f"ConvTranspose2d: only padding_mode='zeros' is supported (as in PyTorch), got {padding_mode!r}.")
        self.padding_mode = padding_mode
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = pair("ConvTranspose2d", "kernel_size", kernel_size)
        self.stride = pair("ConvTranspose2d", "stride", stride)
        self.padding = pair("ConvTranspose2d", "padding", padding)
        self.output_padding = pair("ConvTranspose2d", "output_padding", output_padding)
        self.dilation = pair("ConvTranspose2d", "dilation", dilation)
        weight_shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        add_weight_and_bias(self, weight_shape, self.out_channels if bias else None, dtype, seed)

    def forward(self, x: Any) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding, self.groups, self.dilation)

    def extra_repr(self) -> str:
        return _conv_repr(self, padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1)


def _conv_repr(m: Any, **defaults: Any) -> str:
    """``in, out, kernel_size=.., stride=..`` plus every option that differs from its default."""
    s = f"{m.in_channels}, {m.out_channels}, kernel_size={m.kernel_size}, stride={m.stride}"
    s += "".join(f", {k}={getattr(m, k)}" for k, v in defaults.items() if getattr(m, k) != v)
    return s + (", bias=False" if m.bias is None else "")
