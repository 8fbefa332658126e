"""``Tensor``: a numpy array that records the ops applied to it, and the tensor factories."""
from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from .autograd.grad_mode import run_ieee, state

# dtypes under PyTorch's names. They are numpy dtypes, so ``x.dtype == tg.float32`` and
# ``x.dtype == np.float32`` both hold and either is accepted wherever a dtype is taken.
float16 = half = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

DEFAULT_DTYPE = np.float32
_rng = np.random.default_rng()


class Generator:
    """A random number generator, as ``torch.Generator``: pass it as ``generator=`` to
    ``rand``/``randn``/``randint``/... for a stream independent of the global one.

    Example::

        g = Generator().manual_seed(0)
        a = rand(2, generator=g)
    """

    def __init__(self, device: Any = "cpu") -> None:
        _check_device("Generator", device)
        self.rng = np.random.default_rng()

    def manual_seed(self, seed: int) -> Generator:
        """Reseed; returns self."""
        self.rng = np.random.default_rng(seed)
        return self


def manual_seed(seed: int) -> None:
    """Seed the global generator used by ``rand``/``randn``/dropout/init when no seed is given."""
    global _rng
    _rng = np.random.default_rng(seed)


def get_rng(seed: int | np.random.Generator | Generator | None = None) -> np.random.Generator:
    """A numpy Generator from ``seed`` (an int, a numpy Generator or a :class:`Generator`), or
    the global one (see ``manual_seed``)."""
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, Generator):
        return seed.rng
    return np.random.default_rng(seed)


class layout:  # noqa: N801 - PyTorch's name
    """A tensor layout, as ``torch.layout``. Tensors here are dense numpy arrays, so ``strided``
    (every factory's default) is the only one they take; ``sparse_coo`` and ``sparse_csr`` exist so
    that ported code gets an error that says so. Example: ``zeros(2, layout=strided)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"tinygrad_cnn.{self.name}"


class memory_format:  # noqa: N801 - PyTorch's name
    """A memory format, as ``torch.memory_format``. Tensors here are numpy arrays in NCHW order, so
    ``contiguous_format`` and ``preserve_format`` are accepted where PyTorch takes them and
    ``channels_last`` / ``channels_last_3d`` raise. Example: ``x.contiguous(memory_format=contiguous_format)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"tinygrad_cnn.{self.name}"


strided, sparse_coo, sparse_csr = layout("strided"), layout("sparse_coo"), layout("sparse_csr")
contiguous_format, preserve_format = memory_format("contiguous_format"), memory_format("preserve_format")
channels_last, channels_last_3d = memory_format("channels_last"), memory_format("channels_last_3d")


def _check_dense(op: str, layout: Any = None, pin_memory: bool = False, memory_format: Any = None, preserve: bool = True) -> None:
    """Accept PyTorch's default ``layout``/``pin_memory``/``memory_format`` arguments; refuse the
    others, saying what tensors are here and what to write instead."""
    if layout is not None and layout is not strided:
        raise NotImplementedError(
            f"{op}: layout={layout!r} is not supported; tinygrad_cnn tensors are dense numpy arrays. "
            "Use the default layout (omit it, or layout=tinygrad_cnn.strided)."
        )
    if pin_memory:
        raise NotImplementedError(
            f"{op}: pin_memory=True is not supported; tinygrad_cnn computes on the CPU only, so there is no "
            "pinned memory for device transfers. Omit it (pin_memory=False)."
        )
    ok = (contiguous_format, preserve_format) if preserve else (contiguous_format,)
    if memory_format is not None and memory_format not in ok:
        raise NotImplementedError(
            f"{op}: memory_format={memory_format!r} is not supported; tinygrad_cnn tensors are C-contiguous numpy "
            "arrays (NCHW for images). Omit it (or use memory_format=tinygrad_cnn.contiguous_format)."
        )


class device:  # noqa: N801 - PyTorch's name
    """A device; only ``'cpu'`` exists (tinygrad_cnn computes with numpy on the CPU).

    Example: ``device('cpu') == 'cpu'``.
    """

    def __init__(self, type: Any = "cpu", index: int | None = None) -> None:  # noqa: A002
        self.type = _check_device("device", type)
        self.index = index

    def __eq__(self, other: object) -> bool:
        return str(other) == "cpu"

    __hash__ = object.__hash__

    def __str__(self) -> str:
        return self.type

    def __repr__(self) -> str:
        return "device(type='cpu')"


def _check_device(op: str, d: Any) -> str:
    name = d.type if isinstance(d, device) else str(d)
    if name.split(":")[0] != "cpu":
        raise RuntimeError(
            f"{op}: device {name!r} is not available; tinygrad_cnn computes with numpy on the CPU only. "
            "Use 'cpu' (or drop the .to()/.cuda() call)."
        )
    return "cpu"


def _is_dtype(x: Any) -> bool:
    if isinstance(x, (np.dtype, type)):
        return True
    if isinstance(x, str):
        try:
            np.dtype(x)
        except TypeError:
            return False
        return True
    return False


def _infer_array(data: Any) -> np.ndarray:
    """``torch.tensor``'s inference for Python data: ints give int64, bools bool, floats (or a mix
    with ints) float32; arrays, numpy scalars and Tensors keep their dtype."""
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, (np.ndarray, np.generic)):
        return np.asarray(data)
    try:
        a = np.asarray(data)
    except ValueError as e:  # ragged lists
        raise TypeError(
            f"tensor: cannot build a tensor from {data!r:.60}: {str(e).rstrip('.')}. Give (nested) lists of equal lengths."
        ) from None
    kind = a.dtype.kind
    if kind == "f" and a.dtype != np.float32 and not _holds_numpy_floats(data):
        return a.astype(np.float32)
    if kind in "iu" and a.dtype != np.int64:
        return a.astype(np.int64)
    if kind == "c" and a.dtype != np.complex64:
        return a.astype(np.complex64)
    if kind not in "fiubc":
        raise TypeError(
            f"tensor: cannot build a tensor from data of type {type(data).__name__} (numpy made dtype {a.dtype}); "
            "give numbers, (nested) lists of numbers, or an array."
        )
    return a


def _holds_numpy_floats(data: Any) -> bool:
    # A list of numpy/Tensor float64 scalars keeps float64 (as torch keeps float64 tensors).
    while isinstance(data, (list, tuple)) and data:
        data = data[0]
    return isinstance(data, (np.floating, np.ndarray, Tensor))


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, Tensor):
        return data.data if dtype is None else data.data.astype(dtype)
    if isinstance(data, (bool, np.bool_)) and dtype is None:
        return np.asarray(data)
    if isinstance(data, np.generic) and dtype is None:
        return np.asarray(data)
    # Python numbers and (nested) lists: float32 unless asked otherwise. Anything numpy would turn
    # into NaN (None) or refuse with its own wording (strings, ragged lists) gets one clear error.
    if data is None or isinstance(data, (str, bytes)):
        raise TypeError(f"expected a Tensor, an array, a number or (nested) lists of numbers; got {type(data).__name__} {data!r:.60}.")
    try:
        return np.asarray(data, dtype=dtype or DEFAULT_DTYPE)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"cannot make a tensor from {type(data).__name__} {data!r:.60}: {str(e).rstrip('.')}. "
            "Give numbers, (nested) lists of numbers of equal lengths, or an array."
        ) from None


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
    is_batched = False  # True only for the per-example view of a batch inside vmap

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
        """The dimensions, a tuple of ints (``size()`` gives the same)."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions (``dim()`` gives the same)."""
        return self.data.ndim

    def size(self, dim: int | None = None) -> Any:
        """``size()`` is the shape, a :class:`Size` (a tuple); ``size(d)`` the size of dim ``d``
        (negative ``d`` counts from the end), as in PyTorch. The element count is ``numel()``.

        Example: ``zeros(2, 3).size() == (2, 3)`` and ``zeros(2, 3).size(-1) == 3``.
        """
        shape = self.data.shape
        if dim is None:
            return Size(shape)
        nd = len(shape)
        if not isinstance(dim, (builtins.int, np.integer)) or isinstance(dim, (builtins.bool, np.bool_)):
            raise TypeError(f"size: dim must be an int, got {dim!r}; size() gives the whole shape.")
        if not -nd <= dim < nd:
            raise IndexError(
                f"size: dim {dim} is out of range for a tensor of shape {shape} "
                f"(expected a dim in [{-nd}, {nd - 1}])."
            )
        return shape[dim]

    def numel(self) -> int:
        """The number of elements. Example: ``zeros(2, 3).numel() == 6``."""
        return self.data.size

    def dim(self) -> int:
        """The number of dimensions. Example: ``zeros(2, 3).dim() == 2``."""
        return self.data.ndim

    def nelement(self) -> int:
        """The number of elements (alias of ``numel``)."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The element type, a numpy dtype: compares equal to ``tg.float32`` and ``np.float32`` alike."""
        return self.data.dtype

    @property
    def device(self) -> device:
        """Always the CPU: ``device(type='cpu')``, equal to ``'cpu'``."""
        return _CPU

    @property
    def is_cuda(self) -> bool:
        """Always False (CPU only)."""
        return False

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating type. Example: ``zeros(2).is_floating_point()``."""
        return self.data.dtype.kind == "f"

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

    def __iter__(self) -> Any:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.data.shape[0]))

    # ---- conversion -------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self) -> Any:
        """The single element as a Python number. Example: ``tensor([3.0]).item() == 3.0``."""
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted, got shape {self.shape}.")
        return self.data.item()

    def tolist(self) -> Any:
        """Nested Python lists of numbers (a number for a 0-d tensor). Example: ``ones(2).tolist()``."""
        return self.data.tolist()

    def __float__(self) -> float:
        return builtins.float(self.item())

    def __int__(self) -> int:
        return builtins.int(self.item())

    def __abs__(self) -> Tensor:
        return E.Abs.apply(self)

    def detach(self) -> Tensor:
        """A new leaf sharing the data (and version counter), cut off from the graph."""
        t = Tensor._make(self.data, None, 0)
        t.name = self.name
        t._base = self if self._base is None else self._base
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor off from the graph in place (it becomes a leaf that does not require
        grad); returns self."""
        self.grad_fn = None
        self._output_nr = 0
        self._requires_grad = False
        return self

    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A copy of ``data`` with this tensor's dtype unless ``dtype`` is given. Example: ``x.new_tensor([1, 2])``."""
        return tensor(data, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Zeros of shape ``size`` with this tensor's dtype (unless ``dtype``). Example: ``x.new_zeros(2, 3)``."""
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Ones of shape ``size`` with this tensor's dtype (unless ``dtype``). Example: ``x.new_ones(2)``."""
        return ones(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_full(self, size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """``size`` filled with ``fill_value``, this tensor's dtype (unless ``dtype``). Example: ``x.new_full((2,), 7)``."""
        return full(size, fill_value, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of shape ``size`` to be overwritten (zeros), this tensor's dtype. Example: ``x.new_empty(3)``."""
        return zeros(*size, dtype=dtype or self.dtype, requires_grad=requires_grad)

    def clone(self) -> Tensor:
        """A copy with memory of its own, recorded in the graph (gradients flow back to self)."""
        return E.Clone.apply(self)

    def astype(self, dtype: Any) -> Tensor:
        """Cast to ``dtype``. A cast between floating types is differentiable (the gradient is cast
        back); a cast to an integer or bool dtype gives a tensor that does not require grad."""
        if np.dtype(dtype) == self.dtype:
            return self
        return E.Cast.apply(self, dtype=np.dtype(dtype))

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``, as in
        PyTorch: a cast (self when nothing changes); the only device is ``'cpu'``.
        ``memory_format`` may be ``preserve_format`` (the default) or ``contiguous_format`` (the
        copy, if one is made, is then C-contiguous).

        Example: ``ones(2).to('cpu', tg.float64).dtype == tg.float64``.
        """
        dtype, dev = kwargs.pop("dtype", None), kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        copy = kwargs.pop("copy", False)
        fmt = kwargs.pop("memory_format", None)
        _check_dense("to", memory_format=fmt)
        if kwargs:
            raise TypeError(f"to: unexpected keyword argument(s) {sorted(kwargs)}; use dtype=, device=, copy=, memory_format=.")
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif _is_dtype(a) and not (isinstance(a, str) and a.split(":")[0] in ("cpu", "cuda", "mps")):
                dtype = a
            else:
                dev = a
        if dev is not None:
            _check_device("to", dev)
        out = self if dtype is None else self.astype(dtype)
        if copy and out is self:
            out = self.clone()
        # As in PyTorch, memory_format shapes only a copy that is made anyway; to() alone is a no-op.
        return out.contiguous() if fmt is contiguous_format and out is not self else out

    def cpu(self) -> Tensor:
        """Self: tensors live on the CPU."""
        return self

    def cuda(self, *args: Any, **kwargs: Any) -> Tensor:
        """Always raises: there is no GPU backend."""
        _check_device("cuda", "cuda")
        return self

    def type(self, dtype: Any = None) -> Any:
        """``type(dtype)`` casts like ``to(dtype)``; ``type()`` names the tensor type, e.g.
        ``'tinygrad_cnn.FloatTensor'``."""
        if dtype is not None:
            return self.astype(dtype)
        names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                 "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}
        return f"tinygrad_cnn.{names.get(self.dtype.name, self.dtype.name)}Tensor"

    def contiguous(self, memory_format: Any = None) -> Tensor:
        """Self when the data is C-contiguous, else a contiguous copy (recorded like ``clone``).
        ``memory_format`` may only be ``contiguous_format`` (the default); ``channels_last`` raises.
        Example: ``x.t().contiguous().data.flags.c_contiguous``."""
        if memory_format is not None:
            _check_dense("contiguous", memory_format=memory_format, preserve=False)
        return self if _physical_data(self).flags.c_contiguous else E.Clone.apply(self, order="C")

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
        if self.data.size != 1:
            raise RuntimeError(
                f"bool: the truth value of a tensor with {self.data.size} elements is ambiguous; "
                "reduce it first with t.any() or t.all()."
            )
        return builtins.bool(self.data)

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
        if state().enabled and self._requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(
                    f"{op}: a leaf Variable that requires grad is being used in an in-place operation "
                    f"(tensor of shape {self.shape}). Do the update under `with no_grad():` (as optimizers "
                    "do), or use the out-of-place op."
                )
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

    def _binary_(self, op: str, ufunc: Any, other: Any) -> Tensor:
        _check_unbatched_source(op, self, other)
        o = other.data if isinstance(other, Tensor) else other
        if not np.can_cast(np.result_type(self.data, o), self.data.dtype, "same_kind"):
            raise RuntimeError(
                f"{op}: result type {np.result_type(self.data, o)} can't be cast to the desired output type "
                f"{self.dtype} of this in-place update; convert first, e.g. t = t.float()."
            )
        shape = np.shape(o)
        if np.broadcast_shapes(shape, self.shape) != self.shape:
            raise RuntimeError(f"{op}: an operand of shape {shape} does not broadcast to the updated tensor's shape {self.shape}.")
        return self._inplace(op, lambda d: ufunc(d, o, out=d, casting="unsafe"))

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        """``self += alpha * other`` in place (version-counted); returns self."""
        _check_unbatched_source("add_", self, other)
        if alpha != 1.0:
            other = (other.data if isinstance(other, Tensor) else np.asarray(other)) * alpha
        return self._binary_("add_", np.add, other)

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        """``self -= alpha * other`` in place; returns self."""
        _check_unbatched_source("sub_", self, other)
        if alpha != 1.0:
            other = (other.data if isinstance(other, Tensor) else np.asarray(other)) * alpha
        return self._binary_("sub_", np.subtract, other)

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place; returns self."""
        return self._binary_("mul_", np.multiply, other)

    def div_(self, other: Any) -> Tensor:
        """``self /= other`` in place (a floating tensor); returns self."""
        return self._binary_("div_", np.true_divide, other)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Clamp in place to [min, max]; returns self."""
        lo, hi = (v.data if isinstance(v, Tensor) else v for v in (min, max))
        return self._inplace("clamp_", lambda d: np.clip(d, lo, hi, out=d))

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to self's shape) into self in place; returns self."""
        _check_unbatched_source("copy_", self, src)
        s = src.data if isinstance(src, Tensor) else np.asarray(src)
        if s.shape != self.shape and np.broadcast_shapes(s.shape, self.shape) != self.shape:
            raise ValueError(f"copy_: source of shape {s.shape} does not fit destination of shape {self.shape}.")
        return self._inplace("copy_", lambda d: np.copyto(d, s, casting="unsafe"))

    def zero_(self) -> Tensor:
        """Fill with zeros in place; returns self."""
        return self._inplace("zero_", lambda d: d.fill(0))

    def fill_(self, value: float) -> Tensor:
        """Fill with ``value`` in place; returns self."""
        return self._inplace("fill_", lambda d: d.fill(value))

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        """Write ``value`` where the bool ``mask`` is True, in place; returns self."""
        _check_unbatched_source("masked_fill_", self, value)
        _check_unbatched_source("masked_fill_", self, mask)
        m = np.asarray(mask.data if isinstance(mask, Tensor) else mask)
        v = value.data if isinstance(value, Tensor) else value
        return self._inplace("masked_fill_", lambda d: np.copyto(d, v, where=np.broadcast_to(m, d.shape), casting="unsafe"))

    def __setitem__(self, index: Any, value: Any) -> None:
        """``t[index] = value``: an in-place write (version-counted), as ``t[mask] = 0`` in PyTorch."""
        _check_unbatched_source("setitem", self, value)
        idx = F.normalize_index(index)
        v = value.data if isinstance(value, Tensor) else value
        try:
            self.data[idx]
            np.broadcast_shapes(np.shape(v), np.shape(self.data[idx]))
        except (IndexError, ValueError) as e:
            raise IndexError(
                f"setitem: cannot write a value of shape {np.shape(v)} at index {index!r} of a tensor of shape {self.shape}: {e}"
            ) from None
        self._inplace("setitem", lambda d: d.__setitem__(idx, v))

    # ``a += b`` updates a in place, as in PyTorch. A non-leaf that requires grad under grad mode
    # is rebound to the out-of-place result instead: it is what such code means, and the in-place
    # form could not be differentiated here.
    def __iadd__(self, o: Any) -> Tensor:
        return self + o if self.grad_fn is not None and state().enabled else self.add_(o)

    def __isub__(self, o: Any) -> Tensor:
        return self - o if self.grad_fn is not None and state().enabled else self.sub_(o)

    def __imul__(self, o: Any) -> Tensor:
        return self * o if self.grad_fn is not None and state().enabled else self.mul_(o)

    def __itruediv__(self, o: Any) -> Tensor:
        return self / o if self.grad_fn is not None and state().enabled else self.div_(o)

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

    # ``//`` is piecewise constant: its derivative is 0 wherever it exists, so the result is a
    # constant of the graph. ``%`` is ``a - floor(a / b) * b`` with that floor constant, which
    # gives PyTorch's gradients (1 for a, -floor(a / b) for b).
    def __floordiv__(self, o: Any) -> Tensor:
        od = o.data if isinstance(o, Tensor) else o
        _check_broadcast("//", self.data, od)
        if self.is_batched or getattr(o, "is_batched", False):  # inside vmap: over the whole batch
            return _batched_binary(np.floor_divide, self, o)
        return Tensor._make(np.asarray(np.floor_divide(self.data, od)), None, 0)

    def __rfloordiv__(self, o: Any) -> Tensor:
        _check_broadcast("//", o, self.data)
        if self.is_batched:
            return _batched_binary(np.floor_divide, o, self)
        return Tensor._make(np.asarray(np.floor_divide(o, self.data)), None, 0)

    def __mod__(self, o: Any) -> Tensor:
        return _remainder(self, o)

    def __rmod__(self, o: Any) -> Tensor:
        return _remainder(as_tensor(o, like=self), self)

    def __getitem__(self, index: Any) -> Tensor:
        return F.getitem(self, index)

    # Comparisons: non-differentiable, boolean results.
    def _cmp(self, o: Any, fn: Any) -> Tensor:
        if getattr(o, "is_batched", False):  # the other side is a per-example view inside vmap
            from .ops.batching import compare

            return compare(fn, self, o)
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

    # Bitwise operators on bool and integer tensors (masks: ``(x > 0) & (x < 1)``), not differentiable.
    def _bitwise(self, op: str, o: Any, fn: Any) -> Tensor:
        other = o.data if isinstance(o, Tensor) else np.asarray(o)
        for a in (self.data, other):
            if a.dtype.kind not in "biu":
                raise TypeError(
                    f"{op}: defined for bool and integer tensors only, got dtype {a.dtype}; compare first "
                    "(e.g. (x > 0) & (x < 1)) or use logical ops on masks."
                )
        _check_broadcast(op, self.data, other)
        if self.is_batched or getattr(o, "is_batched", False):  # inside vmap: over the whole batch
            return _batched_binary(fn, self, o)
        return Tensor._make(np.asarray(fn(self.data, other)), None, 0)

    def __and__(self, o: Any) -> Tensor:
        return self._bitwise("&", o, np.bitwise_and)

    __rand__ = __and__

    def __or__(self, o: Any) -> Tensor:
        return self._bitwise("|", o, np.bitwise_or)

    __ror__ = __or__

    def __xor__(self, o: Any) -> Tensor:
        return self._bitwise("^", o, np.bitwise_xor)

    __rxor__ = __xor__

    def __invert__(self) -> Tensor:
        return self._bitwise("~", self, lambda a, _: np.invert(a))

    def logical_not(self) -> Tensor:
        """Elementwise not, a bool tensor. Example: ``(x > 0).logical_not()``."""
        if self.is_batched:  # inside vmap: over the whole batch
            from .ops.batching import map_physical

            return map_physical(self, lambda a, k: np.logical_not(a))
        return Tensor._make(np.logical_not(self.data), None, 0)

    # ---- methods mirroring the functional API (see ops/functions.py for shapes and examples) ----
    def exp(self) -> Tensor:
        """e ** self elementwise."""
        return E.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural log elementwise."""
        return E.Log.apply(self)

    def log1p(self) -> Tensor:
        """log(1 + self) elementwise."""
        return E.Log1p.apply(self)

    def expm1(self) -> Tensor:
        """exp(self) - 1 elementwise."""
        return E.Expm1.apply(self)

    def sqrt(self) -> Tensor:
        """Square root elementwise."""
        return E.Sqrt.apply(self)

    def rsqrt(self) -> Tensor:
        """1 / sqrt(self) elementwise."""
        return F.rsqrt(self)

    def abs(self) -> Tensor:
        """|self| elementwise (gradient 0 at 0)."""
        return E.Abs.apply(self)

    def sign(self) -> Tensor:
        """-1, 0 or 1 elementwise (gradient 0)."""
        return E.Sign.apply(self)

    def sin(self) -> Tensor:
        """Sine elementwise."""
        return E.Sin.apply(self)

    def cos(self) -> Tensor:
        """Cosine elementwise."""
        return E.Cos.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent elementwise."""
        return E.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        """1 / (1 + exp(-self)) elementwise."""
        return E.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """max(self, 0) elementwise."""
        return E.ReLU.apply(self)

    def pow(self, exponent: Any) -> Tensor:
        """self ** exponent (a number or a Tensor, broadcast)."""
        return F.pow(self, exponent)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        """Clamp to [min, max] (numbers or Tensors; either may be None). Example: ``t.clamp(min=0)``."""
        return F.clamp(self, min, max)

    clip = clamp

    def maximum(self, other: Any) -> Tensor:
        """Elementwise maximum with ``other``."""
        return F.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise minimum with ``other``."""
        return F.minimum(self, other)

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` else ``other``, as ``torch.Tensor.where``."""
        return F.where(condition, self, other)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where the bool ``mask`` is True, else self. Example: ``t.masked_fill(t < 0, 0.0)``."""
        return F.masked_fill(self, mask, value)

    # comparisons: not differentiable, bool results
    def eq(self, other: Any) -> Tensor:
        """self == other elementwise."""
        return F.eq(self, other)

    def ne(self, other: Any) -> Tensor:
        """self != other elementwise."""
        return F.ne(self, other)

    def lt(self, other: Any) -> Tensor:
        """self < other elementwise."""
        return F.lt(self, other)

    def le(self, other: Any) -> Tensor:
        """self <= other elementwise."""
        return F.le(self, other)

    def gt(self, other: Any) -> Tensor:
        """self > other elementwise."""
        return F.gt(self, other)

    def ge(self, other: Any) -> Tensor:
        """self >= other elementwise."""
        return F.ge(self, other)

    def isnan(self) -> Tensor:
        """Where self is NaN."""
        return F.isnan(self)

    def isfinite(self) -> Tensor:
        """Where self is finite."""
        return F.isfinite(self)

    # reductions: PyTorch's dim/keepdim, numpy's axis/keepdims accepted as aliases
    def sum(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Sum over ``dim`` (None: all). Example: ``ones(2, 3).sum(1).tolist() == [3.0, 3.0]``."""
        return F.sum(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def mean(self, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Mean over ``dim`` (None: all). Example: ``ones(2, 3).mean(0).shape == (3,)``."""
        return F.mean(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def prod(self, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
             keepdims: bool | None = None) -> Tensor:
        """Product over ``dim`` (None: all)."""
        return F.prod(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def var(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        """Variance over ``dim``; keywords ``correction`` (default 1, as in PyTorch), numpy's
        ``axis``/``keepdims``/``ddof`` as aliases (the default correction is 1 either way)."""
        return F.var(self, dim, unbiased, keepdim, **kwargs)

    def std(self, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, **kwargs: Any) -> Tensor:
        """Standard deviation over ``dim``, with ``var``'s arguments."""
        return F.std(self, dim, unbiased, keepdim, **kwargs)

    def max(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
        """The maximum of all elements, or with ``dim`` a ``(values, indices)`` named tuple.
        Example: ``v, i = t.max(dim=1)``."""
        return F.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
        """The minimum of all elements, or with ``dim`` a ``(values, indices)`` named tuple."""
        return F.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Maximum over ``dim`` (an int, tuple or None); ties share the gradient."""
        return F.amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Minimum over ``dim``; ties share the gradient."""
        return F.amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Index of the maximum over ``dim`` (None: flattened), int64."""
        return F.argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Tensor:
        """Index of the minimum over ``dim`` (None: flattened), int64."""
        return F.argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def norm(self, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Tensor:
        """The ``p``-norm over ``dim`` (None: all elements). Example: ``tensor([3.0, 4.0]).norm() == 5``."""
        return F.norm(self, p, dim, keepdim)

    def logsumexp(self, dim: Any, keepdim: bool = False) -> Tensor:
        """log(sum(exp(self))) over ``dim``, computed stably."""
        return F.logsumexp(self, dim, keepdim)

    def softmax(self, dim: int) -> Tensor:
        """Softmax along ``dim``."""
        return F.softmax(self, dim)

    def log_softmax(self, dim: int) -> Tensor:
        """Log-softmax along ``dim``."""
        return F.log_softmax(self, dim)

    def cumsum(self, dim: int) -> Tensor:
        """Cumulative sum along ``dim``."""
        return F.cumsum(self, dim)

    def sort(self, dim: int = -1, descending: bool = False) -> Any:
        """Sorted along ``dim``: ``(values, indices)``."""
        return F.sort(self, dim, descending)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
        """The ``k`` largest (smallest) along ``dim``: ``(values, indices)``."""
        return F.topk(self, k, dim, largest, sorted)

    def any(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Whether any element is non-zero (over ``dim``)."""
        return F.any(self, dim, keepdim)

    def all(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Whether all elements are non-zero (over ``dim``)."""
        return F.all(self, dim, keepdim)

    # shapes
    def reshape(self, *shape: Any) -> Tensor:
        """Reshape: ``t.reshape(2, -1)`` or ``t.reshape((2, -1))``."""
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    view = reshape

    def permute(self, *dims: Any) -> Tensor:
        """Reorder dims: ``t.permute(0, 2, 3, 1)`` or ``t.permute((0, 2, 3, 1))``."""
        return F.permute(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        """Swap two dims."""
        return F.transpose(self, dim0, dim1)

    def t(self) -> Tensor:
        """Transpose of a tensor of at most 2 dims (1-D and 0-D tensors are returned as they are)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {self.shape}; use transpose(d0, d1) or mT.")
        return self if self.ndim < 2 else F.transpose(self, 0, 1)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims start_dim..end_dim into one."""
        return F.flatten(self, start_dim, end_dim)

    def unflatten(self, dim: int, sizes: Any) -> Tensor:
        """Split dim ``dim`` into ``sizes``."""
        return F.unflatten(self, dim, sizes)

    def squeeze(self, dim: Any = None, *, axis: Any = None) -> Tensor:
        """Drop size-1 dims (all, or those of ``dim``)."""
        return F.squeeze(self, dim, axis=axis)

    def unsqueeze(self, dim: int | None = None, *, axis: Any = None) -> Tensor:
        """Insert a size-1 dim at ``dim``."""
        return F.unsqueeze(self, dim, axis=axis)

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes`` without copying; -1 keeps a dim. Example: ``ones(3, 1).expand(-1, 4)``."""
        sizes = tuple(sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: {len(sizes)} sizes given for a tensor of shape {self.shape}; give at least {self.ndim}.")
        return F.broadcast_to(self, tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes)))

    broadcast_to = expand

    def expand_as(self, other: Tensor) -> Tensor:
        """Broadcast to ``other``'s shape."""
        return F.broadcast_to(self, other.shape)

    def view_as(self, other: Tensor) -> Tensor:
        """Reshape to ``other``'s shape."""
        return F.reshape(self, other.shape)

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile: ``t.repeat(2, 3)`` (numpy's ``tile``)."""
        return F.repeat(self, *sizes)

    def chunk(self, chunks: int, dim: int = 0) -> tuple:
        """``chunks`` pieces along ``dim``."""
        return F.chunk(self, chunks, dim)

    def split(self, split_size: Any, dim: int = 0) -> tuple:
        """Pieces of ``split_size`` (an int or a list of sizes) along ``dim``."""
        return F.split(self, split_size, dim)

    def gather(self, dim: int, index: Any) -> Tensor:
        """Entries picked by ``index`` along ``dim``."""
        return F.gather(self, dim, index)

    def scatter_add(self, dim: int, index: Any, src: Any) -> Tensor:
        """A copy with ``src`` added at ``index`` along ``dim``."""
        return F.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index: Any) -> Tensor:
        """Entries at the 1-D ``index`` along ``dim``."""
        return F.index_select(self, dim, index)

    # ---- more of PyTorch's Tensor methods, composed of the ones above --------------------
    def __format__(self, spec: str) -> str:
        # As PyTorch: a 0-d tensor formats as its number (f"{loss:.3f}"), others as their repr.
        if self.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def add(self, other: Any, alpha: float = 1) -> Tensor:
        """``self + alpha * other``. Example: ``x.add(y, alpha=2)``."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other: Any, alpha: float = 1) -> Tensor:
        """``self - alpha * other``. Example: ``x.sub(1)``."""
        return self - (other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        """``self * other``. Example: ``x.mul(2)``."""
        return self * other

    def div(self, other: Any) -> Tensor:
        """``self / other``. Example: ``x.div(2)``."""
        return self / other

    def neg(self) -> Tensor:
        """``-self``. Example: ``x.neg()``."""
        return -self

    def square(self) -> Tensor:
        """``self * self``. Example: ``x.square()``."""
        return self * self

    def log2(self) -> Tensor:
        """Base-2 logarithm elementwise. Example: ``tensor([8.0]).log2()``."""
        return E.Log.apply(self) * (1.0 / np.log(2.0))

    def log10(self) -> Tensor:
        """Base-10 logarithm elementwise. Example: ``tensor([100.0]).log10()``."""
        return E.Log.apply(self) * (1.0 / np.log(10.0))

    def floor(self) -> Tensor:
        """Round down elementwise (gradient 0). Example: ``tensor([1.5]).floor()``."""
        return E.Rounding.apply(self, mode="floor")

    def ceil(self) -> Tensor:
        """Round up elementwise (gradient 0). Example: ``tensor([1.5]).ceil()``."""
        return E.Rounding.apply(self, mode="ceil")

    def round(self) -> Tensor:
        """Round half to even elementwise (gradient 0), as ``torch.round``. Example: ``tensor([2.5]).round()``."""
        return E.Rounding.apply(self, mode="round")

    def trunc(self) -> Tensor:
        """Round toward zero elementwise (gradient 0). Example: ``tensor([-1.5]).trunc()``."""
        return E.Rounding.apply(self, mode="trunc")

    def matmul(self, other: Any) -> Tensor:
        """``self @ other``. Example: ``a.matmul(b)``."""
        return F.matmul(self, other)

    def mm(self, other: Any) -> Tensor:
        """Product of two 2-D tensors. Example: ``a.mm(b)`` for (n, k) and (k, m)."""
        return mm(self, other)

    def dot(self, other: Any) -> Tensor:
        """Inner product of two 1-D tensors. Example: ``x.dot(y)``."""
        o = as_tensor(other, like=self)
        if self.ndim != 1 or o.ndim != 1 or self.shape != o.shape:
            raise ValueError(f"dot: expects two 1-D tensors of the same size, got shapes {self.shape} and {o.shape}.")
        return F.matmul(self, o)

    def flip(self, *dims: Any) -> Tensor:
        """Reverse the order along ``dims``. Example: ``x.flip(0)`` or ``x.flip((0, 1))``."""
        chosen = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        axes = normalize_axis("flip", chosen, self.ndim) or ()
        return self[tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(self.ndim))]

    def argsort(self, dim: int = -1, descending: bool = False) -> Tensor:
        """The indices that sort ``dim`` (int64). Example: ``tensor([3, 1, 2]).argsort()``."""
        return F.sort(self, dim, descending).indices

    def type_as(self, other: Tensor) -> Tensor:
        """Cast to ``other``'s dtype. Example: ``x.type_as(y)``."""
        return self.astype(other.dtype)

    def unbind(self, dim: int = 0) -> tuple:
        """The slices along ``dim``, without it. Example: ``a, b = ones(2, 3).unbind()``."""
        d = normalize_axis("unbind", dim, self.ndim)[0]  # type: ignore[index]
        return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """``length`` entries of ``dim`` from ``start``. Example: ``arange(5).narrow(0, 1, 2)``."""
        d = normalize_axis("narrow", dim, self.ndim)[0]  # type: ignore[index]
        start = start + self.shape[d] if start < 0 else start
        if not 0 <= start <= start + length <= self.shape[d]:
            raise IndexError(f"narrow: start {start} and length {length} do not fit dim {dim} of size {self.shape[d]}.")
        return self[(slice(None),) * d + (slice(start, start + length),)]

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims, zeros above. Example: ``ones(3, 3).tril()``."""
        if self.ndim < 2:
            raise ValueError(f"tril: input must have at least 2 dimensions, got shape {self.shape}.")
        return self * Tensor._make(np.tril(np.ones(self.shape[-2:], dtype=self.dtype), diagonal), None, 0)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims, zeros below. Example: ``ones(3, 3).triu()``."""
        if self.ndim < 2:
            raise ValueError(f"triu: input must have at least 2 dimensions, got shape {self.shape}.")
        return self * Tensor._make(np.triu(np.ones(self.shape[-2:], dtype=self.dtype), diagonal), None, 0)

    def nonzero(self) -> Tensor:
        """The (n, ndim) int64 indices of the nonzero entries. Example: ``tensor([0, 1, 1]).nonzero()``."""
        return Tensor._make(np.argwhere(self.data).astype(np.int64), None, 0)

    def is_contiguous(self) -> bool:
        """Whether the data is C-contiguous. Example: ``ones(2, 3).t().is_contiguous() is False``."""
        return builtins.bool(_physical_data(self).flags.c_contiguous)

    def stride(self, dim: int | None = None) -> Any:
        """Strides in elements (not bytes), as PyTorch. Example: ``ones(2, 3).stride() == (3, 1)``."""
        d = _physical_data(self)  # inside vmap: the strides of the per-example dims of the batch
        st = tuple(s // d.itemsize for s in d.strides[d.ndim - self.ndim :])
        return st if dim is None else st[normalize_axis("stride", dim, self.ndim)[0]]  # type: ignore[index]

    def element_size(self) -> int:
        """Bytes per element. Example: ``ones(2).element_size() == 4``."""
        return self.data.itemsize

    def relu_(self) -> Tensor:
        """``max(self, 0)`` in place; returns self."""
        return self._inplace("relu_", lambda d: np.maximum(d, 0, out=d))

    def sigmoid_(self) -> Tensor:
        """Sigmoid in place; returns self."""
        return self._inplace("sigmoid_", lambda d: np.copyto(d, 0.5 * (1.0 + np.tanh(0.5 * d))))

    def exp_(self) -> Tensor:
        """``exp(self)`` in place; returns self."""
        return self._inplace("exp_", lambda d: np.exp(d, out=d))

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator: Any = None) -> Tensor:
        """Fill in place with uniform samples from [a, b); returns self."""
        rng = get_rng(generator)
        return self._fill_random("uniform_", rng, lambda s: rng.uniform(a, b, s))

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> Tensor:
        """Fill in place with normal samples; returns self."""
        rng = get_rng(generator)
        return self._fill_random("normal_", rng, lambda s: rng.normal(mean, std, s))

    def _fill_random(self, op: str, rng: np.random.Generator, draw: Callable[[tuple], np.ndarray]) -> Tensor:
        """Fill in place with ``draw(self.shape)``. Inside vmap an unbatched tensor holds one value
        for all examples, so only randomness='same' can fill it (as torch.func)."""
        if self.is_batched or not _batching.batch_levels():
            return self._inplace(op, lambda d: np.copyto(d, draw(d.shape), casting="unsafe"))
        values = _batching.random_values(op, rng, draw, self.shape)
        if values.is_batched:
            raise RuntimeError(
                f"{_different_vmap()}: {op} fills an unbatched tensor (shape {self.shape}) in place, but randomness='different' "
                "asks for different values per example, which it cannot hold. Draw a new tensor instead (e.g. rand_like or "
                "randn_like, batched under 'different'), or use randomness='same'."
            )
        return self._inplace(op, lambda d: np.copyto(d, values.data, casting="unsafe"))

    # The casts named like builtins come last: in the class body they shadow float, int and bool
    # for the annotations written after them.
    def float(self) -> Tensor:
        """Cast to float32."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """Cast to float64."""
        return self.astype(np.float64)

    def half(self) -> Tensor:
        """Cast to float16."""
        return self.astype(np.float16)

    def long(self) -> Tensor:
        """Cast to int64 (not differentiable)."""
        return self.astype(np.int64)

    def int(self) -> Tensor:
        """Cast to int32 (not differentiable)."""
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        """Cast to bool (not differentiable)."""
        return self.astype(np.bool_)


class Size(tuple):
    """A tensor's shape as ``Tensor.size()`` gives it: a tuple of ints (it compares equal to
    one), with ``numel()`` as ``torch.Size`` has.

    Example: ``Size((2, 3)).numel() == 6`` and ``zeros(2, 3).size() == (2, 3)``.
    """

    __slots__ = ()

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"Size({list(self)})"


_CPU = device("cpu")


def _check_broadcast(op: str, a: Any, b: Any) -> None:
    try:
        np.broadcast_shapes(np.shape(a), np.shape(b))
    except ValueError:
        raise ValueError(
            f"{op}: shapes {np.shape(a)} and {np.shape(b)} cannot be broadcast together: aligned from the right, each "
            "pair of dimensions must be equal or one of them 1."
        ) from None


def _batched_binary(fn: Any, a: Any, b: Any) -> Tensor:
    """A non-differentiable numpy ufunc of two operands, either batched inside vmap."""
    from .ops.batching import compare

    return compare(fn, a, b)


def _remainder(a: Tensor, b: Any) -> Tensor:
    bd = b.data if isinstance(b, Tensor) else b
    _check_broadcast("%", a.data, bd)
    if a.is_batched or getattr(b, "is_batched", False):  # inside vmap: the same over the whole batch
        if a.dtype.kind in "iub" and np.result_type(bd.dtype if isinstance(b, Tensor) else np.asarray(b)).kind in "iub":
            return _batched_binary(np.remainder, a, b)
        return a - _batched_binary(np.floor_divide, a, b) * b
    q = np.floor_divide(a.data, bd)
    if a.data.dtype.kind in "iub" and np.asarray(bd).dtype.kind in "iub":
        return Tensor._make(np.asarray(np.remainder(a.data, bd)), None, 0)
    return a - Tensor._make(np.asarray(q), None, 0) * b


def mm(input: Any, mat2: Any) -> Tensor:  # noqa: A002
    """Product of two 2-D tensors, (n, k) @ (k, m) -> (n, m). Example: ``mm(ones(2, 3), ones(3, 4))``."""
    a, b = as_tensor(input), as_tensor(mat2)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects two 2-D tensors, got shapes {a.shape} and {b.shape}; use matmul for batches.")
    return F.matmul(a, b)


def bmm(input: Any, mat2: Any) -> Tensor:  # noqa: A002
    """Batched product, (b, n, k) @ (b, k, m) -> (b, n, m). Example: ``bmm(ones(5, 2, 3), ones(5, 3, 4))``."""
    a, b = as_tensor(input), as_tensor(mat2)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: expects two 3-D tensors with the same batch size, got shapes {a.shape} and {b.shape}.")
    return F.matmul(a, b)


def var_mean(input: Any, dim: Any = None, *, correction: int = 1, keepdim: bool = False) -> tuple:  # noqa: A002
    """``(var, mean)`` over ``dim``. Example: ``v, m = var_mean(x, 0)``."""
    x = as_tensor(input)
    return F.var(x, dim, keepdim=keepdim, correction=correction), F.mean(x, dim, keepdim=keepdim)


def std_mean(input: Any, dim: Any = None, *, correction: int = 1, keepdim: bool = False) -> tuple:  # noqa: A002
    """``(std, mean)`` over ``dim``. Example: ``s, m = std_mean(x, 0)``."""
    x = as_tensor(input)
    return F.std(x, dim, keepdim=keepdim, correction=correction), F.mean(x, dim, keepdim=keepdim)


def is_tensor(obj: Any) -> bool:
    """Whether ``obj`` is a :class:`Tensor`. Example: ``is_tensor(zeros(1))``."""
    return isinstance(obj, Tensor)


def numel(input: Any) -> int:  # noqa: A002
    """The number of elements of ``input``. Example: ``numel(zeros(2, 3)) == 6``."""
    return input.numel()


def _check_no_overlap(op: str, a: np.ndarray) -> None:
    """An in-place write into a tensor whose elements share memory (an ``expand``ed tensor) would
    write each location several times: refuse it, as PyTorch does."""
    if any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise RuntimeError(
            f"{op}: unsupported operation: more than one element of the written-to tensor (shape "
            f"{a.shape}, strides {a.strides}) refers to a single memory location, as after expand() "
            "or broadcast_to(). Clone it first (t.clone() or t * 1) and write into the clone."
        )


def _physical_data(t: Tensor) -> np.ndarray:
    """``t.data``, or inside vmap the array of the whole batch (batch dims in front), for the
    queries of layout (contiguity, strides) that do not read values."""
    while t.is_batched:
        t = t.value  # type: ignore[attr-defined]
    return t.data


def _check_unbatched_source(op: str, dest: Tensor, src: Any) -> None:
    """An in-place write of a batched value (inside vmap) into a tensor that is not batched would
    keep one example's values: refuse it."""
    if getattr(src, "is_batched", False) and not dest.is_batched:
        raise RuntimeError(
            f"{_batching.vmap_name(src.level)}: {op} writes a batched tensor (per-example shape {src.shape}) in place into a "
            f"tensor of shape {dest.shape} that is not batched (created outside vmap or without a batched input), so each "
            "example would overwrite it. Use the out-of-place op (e.g. y = x + v instead of x.add_(v)), or build the tensor "
            "from a batched input."
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
# PyTorch's argument forms: sizes as ints or one tuple, dtype=, requires_grad=, generator= (a
# Generator, numpy Generator or int seed; ``seed=`` is the same), device= ('cpu' only). Inside
# vmap the random ones follow its ``randomness`` (see _random).
def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        out = tuple(builtins.int(s) for s in shape)
    except TypeError:
        raise TypeError(f"size must be ints or one tuple of ints, got {shape!r}.") from None
    if builtins.any(s < 0 for s in out):
        raise ValueError(f"size {out} has a negative dimension.")
    return out


def _new(a: np.ndarray, requires_grad: bool, dev: Any) -> Tensor:
    if dev is not None:
        _check_device("factory", dev)
    return Tensor(a, requires_grad=requires_grad)


def _rng_of(generator: Any, seed: Any) -> np.random.Generator:
    return get_rng(generator if generator is not None else seed)


def _different_vmap() -> str:
    """The name of the outermost running vmap with randomness='different', for error messages."""
    return _batching.vmap_name(next(lv for lv, _, r in _batching.batch_levels() if r == "different"))


def _random(op: str, rng: np.random.Generator, draw: Callable[[tuple], np.ndarray], shape: tuple, requires_grad: bool, dev: Any) -> Tensor:
    """A new tensor of ``draw(shape)``, values from ``rng``. Inside vmap the draw follows the running
    vmaps' ``randomness``, as torch.func's factories: refused under 'error', one draw per example
    (a batched tensor) under 'different', one shared draw under 'same'."""
    if not _batching.batch_levels():
        return _new(draw(shape), requires_grad, dev)
    t = _batching.random_values(op, rng, draw, shape)
    if not t.is_batched:
        return _new(t.data, requires_grad, dev)
    if requires_grad:
        raise RuntimeError(
            f"{op}: requires_grad=True inside {_different_vmap()} with randomness='different', which gives each example its "
            "own values (a batched tensor) that cannot be a leaf requiring grad. Create the tensor outside the vmapped function, "
            "or differentiate inside it with grad/vjp."
        )
    if dev is not None:
        _check_device(op, dev)
    return t


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None, device: Any = None,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (a number, nested lists, an ndarray or a Tensor),
    like ``torch.tensor``: Python ints give int64, bools bool, floats (also mixed with ints)
    float32; arrays keep their dtype. Later changes to ``data`` do not reach it;
    :func:`from_numpy` shares memory instead.

    Example: ``tensor([[1., 2.]], requires_grad=True)``; ``tensor([0, 1]).dtype == int64``.
    """
    _check_dense("tensor", pin_memory=pin_memory)
    arr = _infer_array(data) if dtype is None else _to_array(data, np.dtype(dtype))
    if arr is data or (isinstance(data, Tensor) and arr is data.data) or (isinstance(data, np.ndarray) and np.shares_memory(arr, data)):
        arr = arr.copy()
    if device is not None:
        _check_device("tensor", device)
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


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,
          layout: Any = None, pin_memory: bool = False) -> Tensor:
    """Zeros of shape ``size`` (float32 by default). Example: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    _check_dense("zeros", layout, pin_memory)
    return _new(np.zeros(_shape(size), dtype=dtype or DEFAULT_DTYPE), requires_grad, device)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,
         layout: Any = None, pin_memory: bool = False) -> Tensor:
    """Ones of shape ``size``. Example: ``ones(2, 3)``."""
    _check_dense("ones", layout, pin_memory)
    return _new(np.ones(_shape(size), dtype=dtype or DEFAULT_DTYPE), requires_grad, device)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,
          layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """A tensor of shape ``size`` whose values are to be overwritten (zeros here, never garbage).
    Example: ``empty(2, 3)``."""
    _check_dense("empty", layout, pin_memory, memory_format)
    return zeros(*size, dtype=dtype, requires_grad=requires_grad, device=device)


def _scalar_dtype(value: Any) -> Any:
    """``torch.full``'s inference: bool -> bool, int -> int64, float -> float32."""
    if isinstance(value, (bool, np.bool_)):
        return np.bool_
    if isinstance(value, (builtins.int, np.integer)):
        return np.int64
    return DEFAULT_DTYPE


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,
         layout: Any = None, pin_memory: bool = False) -> Tensor:
    """``size`` filled with ``fill_value``; the dtype follows the value (int -> int64, float ->
    float32) unless given. Example: ``full((2, 2), 7.0)``."""
    _check_dense("full", layout, pin_memory)
    return _new(np.full(_shape((size,)), fill_value, dtype=dtype or _scalar_dtype(fill_value)), requires_grad, device)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None, requires_grad: bool = False,
           device: Any = None, layout: Any = None, pin_memory: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step`` (``arange(n)``: 0..n-1); int64 when all arguments are
    ints, else float32, unless ``dtype`` says otherwise. Example: ``arange(0, 1, 0.25)``."""
    _check_dense("arange", layout, pin_memory)
    a = np.arange(start, end, step) if end is not None else np.arange(start)
    if dtype is not None:
        a = a.astype(dtype)
    elif a.dtype.kind == "f":
        a = a.astype(DEFAULT_DTYPE)
    elif a.dtype.kind in "iu":
        a = a.astype(np.int64)
    return _new(a, requires_grad, device)


def linspace(start: float, end: float, steps: int, dtype: Any = None, requires_grad: bool = False, device: Any = None,
             layout: Any = None, pin_memory: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive (float32 by default).
    Example: ``linspace(0, 1, 5)``."""
    _check_dense("linspace", layout, pin_memory)
    return _new(np.linspace(start, end, builtins.int(steps)).astype(dtype or DEFAULT_DTYPE), requires_grad, device)


def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False, device: Any = None,
        layout: Any = None, pin_memory: bool = False) -> Tensor:
    """The n x m identity. Example: ``eye(3)``."""
    _check_dense("eye", layout, pin_memory)
    return _new(np.eye(n, m, dtype=dtype or DEFAULT_DTYPE), requires_grad, device)


def rand(*size: Any, generator: Any = None, seed: Any = None, dtype: Any = None, requires_grad: bool = False,
         device: Any = None, layout: Any = None, pin_memory: bool = False) -> Tensor:
    """Uniform [0, 1) of shape ``size``. Example: ``rand(2, 3, generator=Generator().manual_seed(0))``."""
    _check_dense("rand", layout, pin_memory)
    rng = _rng_of(generator, seed)
    return _random("rand", rng, lambda s: rng.random(s).astype(dtype or DEFAULT_DTYPE), _shape(size), requires_grad, device)


def randn(*size: Any, generator: Any = None, seed: Any = None, dtype: Any = None, requires_grad: bool = False,
          device: Any = None, layout: Any = None, pin_memory: bool = False) -> Tensor:
    """Standard normal of shape ``size``. Example: ``randn(2, 3, seed=0)``."""
    _check_dense("randn", layout, pin_memory)
    rng = _rng_of(generator, seed)
    return _random("randn", rng, lambda s: rng.standard_normal(s).astype(dtype or DEFAULT_DTYPE), _shape(size), requires_grad, device)


def randint(*args: Any, size: Any = None, generator: Any = None, seed: Any = None, dtype: Any = None,
            requires_grad: bool = False, device: Any = None, layout: Any = None, pin_memory: bool = False) -> Tensor:
    """Integers uniform in ``[low, high)``, int64: ``randint(high, size)`` or
    ``randint(low, high, size)``, as ``torch.randint``. Example: ``randint(0, 10, (2, 3))``."""
    _check_dense("randint", layout, pin_memory)
    if size is None:
        *front, size = args
        args = tuple(front)
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint: call as randint(high, size) or randint(low, high, size).")
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low}).")
    rng = _rng_of(generator, seed)
    return _random("randint", rng, lambda s: rng.integers(low, high, s).astype(dtype or np.int64), _shape((size,)), requires_grad, device)


def randperm(n: int, generator: Any = None, seed: Any = None, dtype: Any = None, requires_grad: bool = False,
             device: Any = None, layout: Any = None, pin_memory: bool = False) -> Tensor:
    """A random permutation of ``0..n-1`` (int64), as ``torch.randperm``. Example: ``randperm(5, seed=0)``."""
    _check_dense("randperm", layout, pin_memory)
    if builtins.int(n) < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}.")
    n = builtins.int(n)
    rng = _rng_of(generator, seed)

    def draw(s: tuple) -> np.ndarray:
        # Under vmap with randomness='different' s has batch dims in front: a permutation per row.
        perm = rng.permutation(n) if len(s) == 1 else rng.permuted(np.broadcast_to(np.arange(n), s), axis=-1)
        return perm.astype(dtype or np.int64)

    return _random("randperm", rng, draw, (n,), requires_grad, device)


def _like(t: Any) -> np.ndarray:
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def zeros_like(input: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,  # noqa: A002
               layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """Zeros with ``input``'s shape and dtype. Example: ``zeros_like(x)``."""
    _check_dense("zeros_like", layout, pin_memory, memory_format)
    return _new(np.zeros_like(_like(input), dtype=dtype), requires_grad, device)


def ones_like(input: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,  # noqa: A002
              layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """Ones with ``input``'s shape and dtype. Example: ``ones_like(x)``."""
    _check_dense("ones_like", layout, pin_memory, memory_format)
    return _new(np.ones_like(_like(input), dtype=dtype), requires_grad, device)


def empty_like(input: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,  # noqa: A002
               layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """A tensor shaped like ``input`` to be overwritten (zeros). Example: ``empty_like(x)``."""
    _check_dense("empty_like", layout, pin_memory, memory_format)
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad, device=device)


def full_like(input: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False, device: Any = None,  # noqa: A002
              layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """``fill_value`` with ``input``'s shape and dtype. Example: ``full_like(x, 0.5)``."""
    _check_dense("full_like", layout, pin_memory, memory_format)
    return _new(np.full_like(_like(input), fill_value, dtype=dtype), requires_grad, device)


def rand_like(input: Any, dtype: Any = None, generator: Any = None, seed: Any = None, requires_grad: bool = False,  # noqa: A002
              device: Any = None, layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """Uniform [0, 1) with ``input``'s shape and (floating) dtype. Example: ``rand_like(x)``."""
    _check_dense("rand_like", layout, pin_memory, memory_format)
    a, rng = _like(input), _rng_of(generator, seed)
    return _random("rand_like", rng, lambda s: rng.random(s).astype(dtype or a.dtype), a.shape, requires_grad, device)


def randn_like(input: Any, dtype: Any = None, generator: Any = None, seed: Any = None, requires_grad: bool = False,  # noqa: A002
               device: Any = None, layout: Any = None, pin_memory: bool = False, memory_format: Any = None) -> Tensor:
    """Standard normal with ``input``'s shape and (floating) dtype. Example: ``randn_like(x)``."""
    _check_dense("randn_like", layout, pin_memory, memory_format)
    a, rng = _like(input), _rng_of(generator, seed)
    return _random("randn_like", rng, lambda s: rng.standard_normal(s).astype(dtype or a.dtype), a.shape, requires_grad, device)


# The engine runs before this module finishes importing; hand it the class (late binding keeps
# imports out of the per-op hot path). Ops import Tensor from here, so bind them last.
from .autograd import engine as _engine  # noqa: E402
from .autograd import function as _function  # noqa: E402

_function.Tensor = _engine.Tensor = Tensor
_function.as_tensor = _engine.as_tensor = as_tensor

from .ops import batching as _batching  # noqa: E402, F401  (BatchedTensor and vmap's dispatch, bound into autograd.function)
from .ops import elementwise as E  # noqa: E402
from .ops import functions as F  # noqa: E402
from .ops.reduce import normalize_axis  # noqa: E402
