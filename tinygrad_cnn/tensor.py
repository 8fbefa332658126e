"""``Tensor``: a numpy array that records the ops applied to it, and the tensor factories."""
from __future__ import annotations

from typing import Any

import numpy as np

from .autograd.grad_mode import run_ieee, state

DEFAULT_DTYPE = np.float32
_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the global generator used by ``rand``/``randn``/dropout/init when no seed is given."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A Generator from ``seed`` (int or Generator), or the global one (see ``manual_seed``)."""
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, Tensor):
        return data.data if dtype is None else data.data.astype(dtype)
    if isinstance(data, (bool, np.bool_)) and dtype is None:
        return np.asarray(data)
    if isinstance(data, np.generic) and dtype is None:
        return np.asarray(data)
    # Python numbers and (nested) lists: float32 unless asked otherwise.
    return np.asarray(data, dtype=dtype or DEFAULT_DTYPE)


class Tensor:
    """An n-dimensional array with reverse-mode autodiff.

    ``Tensor(data, dtype=None, requires_grad=False, name=None)``: Python numbers and lists
    become float32; numpy arrays keep their dtype (float64 stays float64; integer tensors
    cannot require grad) and are wrapped without a copy, as :func:`from_numpy` does;
    :func:`tensor` copies.

    Example::

        x = Tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
        y = (x * x).sum()
        y.backward()
        x.grad            # Tensor([2., 4., 6.], dtype=float32)
    """

    # Slots for what every op sets; the rarely-set attributes live in a lazily created __dict__
    # with class-level defaults, so building an op's output touches four fields, not nine.
    __slots__ = ("data", "grad_fn", "_output_nr", "_requires_grad", "__dict__", "__weakref__")
    grad: Tensor | None = None
    name: str | None = None
    _version = 0  # bumped by in-place updates; backward compares it with the saved version
    _saved_count = 0  # how many live nodes saved this leaf (it is read-only while > 0)
    # For a tensor whose data is a view of another tensor's (reshape, permute, expand, basic
    # slicing, detach), that tensor: views share its version counter, as in PyTorch.
    _base: Tensor | None = None
    # Let numpy hand `ndarray <op> Tensor` to our reflected operators.
    __array_ufunc__ = None

    def __init__(self, data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _to_array(data, dtype)
        self.grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        if name is not None:
            self.name = name
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, grad_fn: Any, output_nr: int) -> Tensor:
        # The hot path of every op: skip __init__'s conversions.
        t = object.__new__(cls)
        t.data = data
        t.grad_fn = grad_fn
        t._output_nr = output_nr
        t._requires_grad = grad_fn is not None
        return t

    # ---- attributes ------------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether gradients are accumulated into this leaf's ``.grad``; returns self."""
        if self.grad_fn is not None:
            if not requires_grad:
                raise RuntimeError(
                    "requires_grad_: this tensor is the output of an op (non-leaf); to stop gradients "
                    "use .detach() instead."
                )
            return self
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, got dtype "
                f"{self.data.dtype}. Convert first, e.g. tensor.float() or tensor.double()."
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def output_nr(self) -> int:
        """Which output of ``grad_fn``'s op this tensor is (0 for single-output ops and leaves)."""
        return self._output_nr

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        return self.permute(tuple(range(self.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        """Transpose of the last two axes."""
        return F.transpose(self, -1, -2)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    # ---- conversion -------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self) -> Any:
        """The single element as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted, got shape {self.shape}.")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing the data (and version counter), cut off from the graph."""
        t = Tensor._make(self.data, None, 0)
        t.name = self.name
        t._base = self if self._base is None else self._base
        return t

    def clone(self) -> Tensor:
        """A copy with memory of its own, recorded in the graph (gradients flow back to self)."""
        return E.Clone.apply(self)

    def astype(self, dtype: Any) -> Tensor:
        """Cast to ``dtype``. A cast between floating types is differentiable (the gradient is cast
        back); a cast to an integer or bool dtype gives a tensor that does not require grad."""
        if np.dtype(dtype) == self.dtype:
            return self
        from .ops.elementwise import Cast

        return Cast.apply(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(", threshold=50)
        extra = f", dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        if self.name:
            extra += f", name={self.name!r}"
        return f"Tensor({body}{extra})"

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"The truth value of a tensor with {self.size} elements is ambiguous; use (t).all() or .any() on .data."
            )
        return bool(self.data)

    __hash__ = object.__hash__

    # ---- autograd ---------------------------------------------------------------------
    def backward(self, gradient: Any = None, retain_graph: bool | None = None, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        ``gradient`` is needed when self has more than one element. Gradients *accumulate*
        across calls (as in PyTorch); reset with ``x.grad = None`` or ``optimizer.zero_grad()``.
        ``retain_graph`` defaults to ``create_graph``; ``create_graph=True`` records the backward
        pass so the gradients can be differentiated again.
        """
        from .autograd.engine import run_backward

        run_backward([self], [gradient], retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, hook: Any) -> Any:
        """Call ``hook(grad)`` each time a gradient for this tensor is computed, before it is
        accumulated into ``.grad`` (a leaf) or passed on to the op that made it (a non-leaf); a
        non-None return replaces the gradient. Returns a handle whose ``remove()`` unregisters it.

        Example::

            x = tensor([1.0, 2.0], requires_grad=True)
            h = x.register_hook(lambda g: g * 2)
            (x * x).sum().backward()     # x.grad == 2 * (2 x) == [4., 8.]
            h.remove()
        """
        from .autograd.hooks import RemovableHandle

        if not self.requires_grad:
            raise RuntimeError(
                f"register_hook: this tensor (shape {self.shape}) does not require grad, so no gradient "
                "will ever reach the hook. Call requires_grad_() on the leaf first."
            )
        if self.grad_fn is None:
            hooks = self.__dict__.setdefault("_hooks", {})
        else:
            hooks = self.grad_fn.tensor_hooks(self._output_nr)
        return RemovableHandle(hooks).add(hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf's gradient in ``.grad`` during backward (leaves always keep theirs).

        Example::

            h = x * 2
            h.retain_grad()
            h.sum().backward()           # h.grad is ones
        """
        if self.grad_fn is None:
            if not self.requires_grad:
                raise RuntimeError("retain_grad: the tensor does not require grad; no gradient would reach it.")
            return
        if self.retains_grad:
            return
        import weakref

        ref = weakref.ref(self)  # the graph must not keep its output alive

        def keep(g: Any) -> None:
            t = ref()
            if t is not None:
                t.grad = Tensor._make(np.array(g.data, copy=True), None, 0) if t.grad is None else t.grad + g.detach()

        self.grad_fn.retain_hook(self._output_nr, keep)
        self.__dict__["retains_grad"] = True

    retains_grad = False  # set by retain_grad() on a non-leaf

    # ---- in-place updates (never recorded; they bump the version counter) --------------
    def _inplace(self, op: str, fn: Any) -> Tensor:
        if state().enabled and self.requires_grad:
            raise RuntimeError(
                f"{op}: in-place update of a tensor that requires grad while grad mode is on would "
                "not be differentiated. Do it under `with no_grad():` (as optimizers do) or use the "
                "out-of-place op."
            )
        _check_no_overlap(op, self.data)
        writeable = self.data.flags.writeable
        if not writeable:
            self.data.flags.writeable = True
        try:
            run_ieee(fn, self.data)
        finally:
            if not writeable:
                self.data.flags.writeable = False
        self._version += 1
        if self._base is not None:
            self._base._version += 1
        return self

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        o = other.data if isinstance(other, Tensor) else other
        return self._inplace("add_", lambda d: np.add(d, o * alpha if alpha != 1.0 else o, out=d, casting="unsafe"))

    def sub_(self, other: Any) -> Tensor:
        o = other.data if isinstance(other, Tensor) else other
        return self._inplace("sub_", lambda d: np.subtract(d, o, out=d, casting="unsafe"))

    def mul_(self, other: Any) -> Tensor:
        o = other.data if isinstance(other, Tensor) else other
        return self._inplace("mul_", lambda d: np.multiply(d, o, out=d, casting="unsafe"))

    def copy_(self, src: Any) -> Tensor:
        s = src.data if isinstance(src, Tensor) else np.asarray(src)
        if s.shape != self.shape and np.broadcast_shapes(s.shape, self.shape) != self.shape:
            raise ValueError(f"copy_: source of shape {s.shape} does not fit destination of shape {self.shape}.")
        return self._inplace("copy_", lambda d: np.copyto(d, s, casting="unsafe"))

    def zero_(self) -> Tensor:
        return self._inplace("zero_", lambda d: d.fill(0))

    def fill_(self, value: float) -> Tensor:
        return self._inplace("fill_", lambda d: d.fill(value))

    # ---- operators ---------------------------------------------------------------------
    # A Python number goes to the scalar ops as a parameter (numpy keeps the tensor's dtype for
    # it); anything else becomes a graph input of the general broadcasting op.
    def __add__(self, o: Any) -> Tensor:
        if type(o) is float or type(o) is int:
            return E.AddScalar.apply(self, c=o)
        return E.Add.apply(self, o)

    def __radd__(self, o: Any) -> Tensor:
        if type(o) is float or type(o) is int:
            return E.AddScalar.apply(self, c=o)
        return E.Add.apply(o, self)

    def __sub__(self, o: Any) -> Tensor:
        if type(o) is float or type(o) is int:
            return E.AddScalar.apply(self, c=-o)
        return E.Sub.apply(self, o)

    def __rsub__(self, o: Any) -> Tensor:
        return E.Sub.apply(o, self)

    def __mul__(self, o: Any) -> Tensor:
        if type(o) is float or type(o) is int:
            return E.MulScalar.apply(self, c=o)
        return E.Mul.apply(self, o)

    def __rmul__(self, o: Any) -> Tensor:
        if type(o) is float or type(o) is int:
            return E.MulScalar.apply(self, c=o)
        return E.Mul.apply(o, self)

    def __truediv__(self, o: Any) -> Tensor:
        return E.Div.apply(self, o)

    def __rtruediv__(self, o: Any) -> Tensor:
        return E.Div.apply(o, self)

    def __pow__(self, o: Any) -> Tensor:
        return F.pow(self, o)

    def __rpow__(self, o: Any) -> Tensor:
        return E.Pow.apply(o, self)

    def __matmul__(self, o: Any) -> Tensor:
        return F.matmul(self, o)

    def __rmatmul__(self, o: Any) -> Tensor:
        return F.matmul(as_tensor(o, like=self), self)

    def __neg__(self) -> Tensor:
        return E.Neg.apply(self)

    def __getitem__(self, index: Any) -> Tensor:
        return F.getitem(self, index)

    # Comparisons: non-differentiable, boolean results.
    def _cmp(self, o: Any, fn: Any) -> Tensor:
        return Tensor._make(np.asarray(fn(self.data, o.data if isinstance(o, Tensor) else o)), None, 0)

    def __eq__(self, o: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(o, np.equal)

    def __ne__(self, o: Any) -> Tensor:  # type: ignore[override]
        return self._cmp(o, np.not_equal)

    def __lt__(self, o: Any) -> Tensor:
        return self._cmp(o, np.less)

    def __le__(self, o: Any) -> Tensor:
        return self._cmp(o, np.less_equal)

    def __gt__(self, o: Any) -> Tensor:
        return self._cmp(o, np.greater)

    def __ge__(self, o: Any) -> Tensor:
        return self._cmp(o, np.greater_equal)

    # ---- methods mirroring the functional API ----------------------------------------------
    def exp(self) -> Tensor:
        return E.Exp.apply(self)

    def log(self) -> Tensor:
        return E.Log.apply(self)

    def sqrt(self) -> Tensor:
        return E.Sqrt.apply(self)

    def abs(self) -> Tensor:
        return E.Abs.apply(self)

    def tanh(self) -> Tensor:
        return E.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        return E.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        return E.ReLU.apply(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return F.clip(self, min, max)

    clamp = clip

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.mean(self, axis, keepdims)

    def var(self, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        return F.var(self, axis, keepdims, ddof)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.max(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return F.min(self, axis, keepdims)

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor._make(np.asarray(self.data.argmax(axis=axis)), None, 0)

    def reshape(self, *shape: Any) -> Tensor:
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    view = reshape

    def permute(self, *axes: Any) -> Tensor:
        return F.permute(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        return F.transpose(self, dim0, dim1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return F.flatten(self, start_dim, end_dim)

    def squeeze(self, axis: Any = None) -> Tensor:
        return F.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        return F.unsqueeze(self, axis)

    def expand(self, *shape: Any) -> Tensor:
        return F.broadcast_to(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    broadcast_to = expand


def _check_no_overlap(op: str, a: np.ndarray) -> None:
    """An in-place write into a tensor whose elements share memory (an ``expand``ed tensor) would
    write each location several times: refuse it, as PyTorch does."""
    if any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise RuntimeError(
            f"{op}: unsupported operation: more than one element of the written-to tensor (shape "
            f"{a.shape}, strides {a.strides}) refers to a single memory location, as after expand() "
            "or broadcast_to(). Clone it first (t.clone() or t * 1) and write into the clone."
        )


def as_tensor(x: Any, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor (no copy for arrays). A Python scalar takes the dtype of ``like`` when
    that is floating (so ``float32_tensor * 2.0`` stays float32), else float32."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor._make(x, None, 0)
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        if like is not None and (like.data.dtype.kind in "fc" or (isinstance(x, int) and like.data.dtype.kind in "iu")):
            return Tensor._make(np.asarray(x, dtype=like.data.dtype), None, 0)
        return Tensor._make(np.asarray(x, dtype=DEFAULT_DTYPE), None, 0)
    return Tensor(x)


# ---- factories ---------------------------------------------------------------------------
def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an ndarray or a Tensor),
    like ``torch.tensor``: later changes to ``data`` do not reach it. :func:`from_numpy` shares
    memory instead. Python floats give float32; arrays keep their dtype.

    Example: ``tensor([[1., 2.]], requires_grad=True)``.
    """
    arr = _to_array(data, dtype)
    if arr is data or (isinstance(data, Tensor) and arr is data.data):
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad, name=name)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory and dtype, like ``torch.from_numpy``: writes to either
    show in both. While a recorded graph saves it for backward, the array is read-only (a write
    would silently corrupt that gradient); :func:`tensor` copies instead.

    Example::

        a = np.zeros(3, np.float32)
        t = from_numpy(a)
        a[0] = 1.0          # t is now [1., 0., 0.]
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}. Use tensor(data) to "
            "build a tensor from numbers or lists."
        )
    return Tensor._make(array, None, 0)


def zeros(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Zeros of ``shape``. Example: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Any, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Ones of ``shape``. Example: ``ones(2, 3)``."""
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape: Any, fill_value: float, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """``shape`` filled with ``fill_value``. Example: ``full((2, 2), 7.0)``."""
    return Tensor(np.full(_shape((shape,)), fill_value, dtype=dtype), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Like ``np.arange``; integer arguments give int64 unless ``dtype`` says otherwise."""
    a = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is not None:
        a = a.astype(dtype)
    elif a.dtype.kind == "f":
        a = a.astype(DEFAULT_DTYPE)
    return Tensor(a, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """The n x m identity. Example: ``eye(3)``."""
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def rand(*shape: Any, seed: int | np.random.Generator | None = None, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) of ``shape``. Example: ``rand(2, 3, seed=0)``."""
    return Tensor(get_rng(seed).random(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def randn(*shape: Any, seed: int | np.random.Generator | None = None, dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Standard normal of ``shape``. Example: ``randn(2, 3, seed=0)``."""
    return Tensor(get_rng(seed).standard_normal(_shape(shape)).astype(dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``t``'s shape and dtype."""
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.zeros_like(a, dtype=dtype), requires_grad=requires_grad)


def ones_like(t: Tensor | np.ndarray, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with ``t``'s shape and dtype."""
    a = t.data if isinstance(t, Tensor) else np.asarray(t)
    return Tensor(np.ones_like(a, dtype=dtype), requires_grad=requires_grad)



# The engine runs before this module finishes importing; hand it the class (late binding keeps
# imports out of the per-op hot path). Ops import Tensor from here, so bind them last.
from .autograd import engine as _engine  # noqa: E402
from .autograd import function as _function  # noqa: E402

_function.Tensor = _engine.Tensor = Tensor
_function.as_tensor = _engine.as_tensor = as_tensor

from .ops import elementwise as E  # noqa: E402
from .ops import functions as F  # noqa: E402
