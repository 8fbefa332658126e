"""SimpleConvNet: the network of the reference chapter (Saito, *Deep Learning from Scratch*, ch. 7),
Conv - ReLU - MaxPool - Affine - ReLU - Affine (- Softmax with the loss)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..nn import init
from ..nn.conv import Conv2d
from ..nn.layers import Flatten, Linear, ReLU
from ..nn.module import Module
from ..nn.pooling import MaxPool2d
from ..tensor import Tensor, get_rng

_CONV_KEYS = ("filter_num", "filter_size", "pad", "stride")


class SimpleConvNet(Module):
    """The chapter's CNN: Conv(filter_num @ filter_size^2, pad, stride) - ReLU - MaxPool 2x2/2 -
    Linear(pool_output_size -> hidden_size) - ReLU - Linear(hidden_size -> output_size).

    With the defaults (input (1, 28, 28), 30 filters 5x5, pad 0, stride 1): conv (30, 24, 24),
    pool (30, 12, 12), Linear(4320 -> 100), Linear(100 -> 10); weights N(0, 0.01^2), zero biases.
    Sizes are computed for any ``conv_param``; one whose convolution output is fractional, empty or
    odd (so 2x2/2 pooling would drop a row or column) raises a ValueError.

    Two interfaces:

    - the Module one: ``model(x)`` returns logits as a Tensor (N, output_size) for autograd;
    - the chapter's, numpy in and out: ``params`` (W1, b1, W2, b2, W3, b3 as *views* of the
      parameters, W2/W3 in the chapter's (in, out) layout, so ``params[k] -= lr * grads[k]``
      trains the model), ``predict(x)``, ``loss(x, t)``, ``accuracy(x, t, batch_size=100)``,
      ``gradient(x, t)`` (backprop) and ``numerical_gradient(x, t)`` (central differences).

    Example::

        net = SimpleConvNet(seed=0)
        grads = net.gradient(x, t)            # x (N, 1, 28, 28), t labels (N,) / (N, 1) or one-hot (N, 10)
        for k in grads:
            net.params[k] -= 0.1 * grads[k]
    """

    def __init__(
        self,
        input_dim: tuple[int, int, int] = (1, 28, 28),
        conv_param: dict[str, int] | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float = 0.01,
        dtype: Any = np.float32,
        seed: Any = None,
    ) -> None:
        super().__init__()
        if conv_param is None:
            conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
        missing = [k for k in _CONV_KEYS if k not in conv_param]
        unknown = [k for k in conv_param if k not in _CONV_KEYS]
        if missing or unknown:
            raise ValueError(f"SimpleConvNet: conv_param needs exactly the keys {list(_CONV_KEYS)}; missing {missing}, unknown {unknown}.")
        fn, fs, pad, stride = (int(conv_param[k]) for k in _CONV_KEYS)
        if len(input_dim) != 3:
            raise ValueError(f"SimpleConvNet: input_dim must be (channels, height, width), got {input_dim!r}.")
        c, h, w = (int(v) for v in input_dim)
        if min(fn, fs, stride, c, h, w) < 1 or pad < 0:
            raise ValueError(f"SimpleConvNet: sizes must be positive and pad >= 0, got input_dim={input_dim}, conv_param={conv_param}.")
        conv_out = []
        for name, size in (("height", h), ("width", w)):
            span = size + 2 * pad - fs
            if span < 0 or span % stride:
                raise ValueError(
                    f"SimpleConvNet: conv_param {conv_param} does not tile the input {name} {size}: "
                    f"(size + 2*pad - filter_size) / stride + 1 = ({size} + {2 * pad} - {fs}) / {stride} + 1 = {span / stride + 1:g} "
                    "is not a positive integer. Choose pad/stride so that it is."
                )
            o = span // stride + 1
            if o % 2:
                raise ValueError(
                    f"SimpleConvNet: the convolution output {name} is {o}, which 2x2 pooling with stride 2 cannot halve "
                    f"evenly (the chapter's formula would silently give a wrong Affine size). Change conv_param {conv_param} "
                    "so that the output is even."
                )
            conv_out.append(o)
        pool_output_size = fn * (conv_out[0] // 2) * (conv_out[1] // 2)
        self.input_dim = (c, h, w)
        self.conv_param = dict(conv_param)
        rng = get_rng(seed)
        self.conv1 = Conv2d(c, fn, fs, stride=stride, padding=pad, dtype=dtype, seed=rng)
        self.relu1 = ReLU()
        self.pool1 = MaxPool2d(2, stride=2)
        self.flatten = Flatten()
        self.affine1 = Linear(pool_output_size, hidden_size, dtype=dtype, seed=rng)
        self.relu2 = ReLU()
        self.affine2 = Linear(hidden_size, output_size, dtype=dtype, seed=rng)
        for layer in (self.conv1, self.affine1, self.affine2):
            init.normal_(layer.weight, std=weight_init_std, seed=rng)
            init.zeros_(layer.bias)

    def forward(self, x: Any) -> Tensor:
        """Logits (N, output_size) for x (N, C, H, W)."""
        x = self.flatten(self.pool1(self.relu1(self.conv1(x))))
        return self.affine2(self.relu2(self.affine1(x)))

    # ---- the chapter's interface (numpy in, numpy out) ------------------------------------------
    @property
    def params(self) -> dict[str, np.ndarray]:
        """W1 (FN, C, FH, FW), b1, W2 (pool_output_size, hidden), b2, W3 (hidden, output), b3:
        views of the parameters' arrays (in-place changes train the model)."""
        return {
            "W1": self.conv1.weight.data,
            "b1": self.conv1.bias.data,
            "W2": self.affine1.weight.data.T,
            "b2": self.affine1.bias.data,
            "W3": self.affine2.weight.data.T,
            "b3": self.affine2.bias.data,
        }

    def _input(self, x: Any) -> Tensor:
        a = x.data if isinstance(x, Tensor) else np.asarray(x)
        return Tensor(a.astype(self.conv1.weight.dtype, copy=False))

    def predict(self, x: Any) -> np.ndarray:
        """Scores (N, output_size) as a numpy array (no graph is recorded)."""
        with no_grad():
            return self(self._input(x)).data

    def _target(self, op: str, t: Any, n: int) -> np.ndarray:
        return chapter_target(f"SimpleConvNet.{op}", t, n, self.affine2.out_features, self.conv1.weight.dtype)

    def loss(self, x: Any, t: Any) -> float:
        """Softmax cross-entropy of the scores against ``t``, as a float: labels of shape (N,) or
        (N, 1), or one-hot / class probabilities (N, C) (the forms the chapter's
        ``cross_entropy_error`` takes)."""
        x = self._input(x)
        t = self._target("loss", t, x.shape[0])
        with no_grad():
            return float(F.cross_entropy(self(x), t).item())

    def accuracy(self, x: Any, t: Any, batch_size: int = 100) -> float:
        """Fraction of ``x`` classified as ``t`` (labels (N,) or (N, 1), or one-hot (N, C); the
        largest entry of a probability row counts as its label), evaluated ``batch_size`` at a time."""
        n = len(x)
        if n == 0:
            raise ValueError("SimpleConvNet.accuracy: x is empty.")
        t = self._target("accuracy", t, n)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        correct = 0
        for i in range(0, n, batch_size):
            y = self.predict(x[i : i + batch_size])
            correct += int(np.sum(np.argmax(y, axis=1) == t[i : i + batch_size]))
        return correct / n

    def gradient(self, x: Any, t: Any) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by backpropagation, with the keys and shapes of ``params``.
        Also leaves them in each parameter's ``.grad`` (cleared first, not accumulated)."""
        x = self._input(x)
        t = self._target("gradient", t, x.shape[0])
        self.zero_grad()
        F.cross_entropy(self(x), t).backward()
        return {
            "W1": self.conv1.weight.grad.data,
            "b1": self.conv1.bias.grad.data,
            "W2": self.affine1.weight.grad.data.T,
            "b2": self.affine1.bias.grad.data,
            "W3": self.affine2.weight.grad.data.T,
            "b3": self.affine2.bias.grad.data,
        }

    def numerical_gradient(self, x: Any, t: Any, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Gradients of ``loss(x, t)`` by central differences ``(L(w + h) - L(w - h)) / 2h``, one
        element at a time (slow: 2 forward passes per parameter; use a float64 model). ``t`` in
        any form :meth:`loss` takes."""
        x = self._input(x)
        t = self._target("numerical_gradient", t, x.shape[0])
        grads = {}
        for key, arr in self.params.items():
            g = np.zeros(arr.shape, dtype=np.float64)
            for idx in np.ndindex(arr.shape):
                old = arr[idx]
                arr[idx] = old + h
                f_plus = self.loss(x, t)
                arr[idx] = old - h
                f_minus = self.loss(x, t)
                arr[idx] = old
                g[idx] = (f_plus - f_minus) / (2 * h)
            grads[key] = g
        return grads


def chapter_target(op: str, t: Any, n: int, classes: int, dtype: Any) -> np.ndarray:
    """The chapter's label forms as ``cross_entropy`` takes them: labels (N,) or (N, 1) (ints, or
    floats with integer values) become int64 class indices; one-hot rows (N, C) become indices
    too (the same loss, exactly); other float rows (N, C) stay class probabilities. Anything else
    raises a ValueError naming ``op`` and the shapes.

    Example: ``chapter_target('loss', [[3], [1]], 2, 10, np.float32)`` is ``array([3, 1])``.
    """
    a = np.asarray(t.data if isinstance(t, Tensor) else t)
    forms = f"labels (N,) or (N, 1), or one-hot / probabilities (N, {classes}), with N = {n} (the batch)"
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{op}: t must hold numbers, got dtype {a.dtype}; give {forms}.")
    if a.ndim == 2 and a.shape[1] == 1 and classes != 1:
        a = a[:, 0]
    if a.ndim == 1 and a.shape[0] == n:
        if a.dtype.kind == "f":
            if not np.all(a == np.round(a)):
                raise ValueError(f"{op}: labels of shape {a.shape} have non-integer values; give {forms}.")
        labels = a.astype(np.int64)
        if labels.size and (np.min(labels) < 0 or np.max(labels) >= classes):
            raise ValueError(f"{op}: labels must be in [0, {classes}), got values in [{np.min(labels)}, {np.max(labels)}].")
        return labels
    if a.ndim == 2 and a.shape == (n, classes):
        one_hot = np.all((a == 0) | (a == 1)) and np.all(a.sum(axis=1) == 1)
        if one_hot:
            return np.argmax(a, axis=1).astype(np.int64)
        if a.dtype.kind == "f":
            return a.astype(dtype, copy=False)
        raise ValueError(f"{op}: integer targets of shape {a.shape} are not one-hot rows; give {forms}.")
    raise ValueError(f"{op}: t has shape {a.shape}; give {forms}.")
