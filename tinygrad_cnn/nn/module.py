"""``Module``: the base class of layers and models, ``Parameter``, and the containers
``Sequential``, ``ModuleList`` and ``ModuleDict`` (PyTorch's names and behaviour).

A module registers the Parameters, buffers and submodules assigned to its attributes, in
definition order, so ``named_parameters()`` yields dotted names like ``'conv1.weight'``::

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.fc1 = Linear(4, 8)
            self.fc2 = Linear(8, 2)

        def forward(self, x):
            return self.fc2(self.fc1(x).relu())

``state_dict()`` is an ordered dict ``name -> Tensor``: parameters then buffers of each module,
modules in definition order. The Tensors are detached and *share memory* with the parameters (as
in PyTorch), so an optimizer step changes them too; take ``{k: v.numpy().copy() ...}`` for a
snapshot. ``load_state_dict`` accepts Tensors or numpy arrays.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from ..autograd import function as function_module
from ..autograd.function import Function
from ..autograd.grad_mode import is_grad_enabled, module_scope, no_grad
from ..tensor import Tensor, device


class Parameter(Tensor):
    """A Tensor that is a module's learnable weight: a leaf that requires grad by default.

    Python numbers and lists become float32; numpy arrays keep their dtype.

    Example::

        w = Parameter(np.zeros((3, 4), dtype=np.float32))   # w.requires_grad is True
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad, name=name)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class StateDictError(RuntimeError, ValueError):
    """``load_state_dict`` found keys or shapes that do not fit the module (PyTorch raises a
    RuntimeError here; it is also a ValueError). Nothing was loaded.

    Attributes: ``missing_keys`` (in the module, not in the state dict), ``unexpected_keys`` (in
    the state dict, not in the module) and ``mismatched`` (``(key, checkpoint_shape, model_shape)``).

    Example::

        try:
            model.load_state_dict(ck)
        except StateDictError as e:
            print(e.missing_keys, e.unexpected_keys)
    """

    def __init__(self, message: str, missing_keys: list[str], unexpected_keys: list[str], mismatched: list[tuple]) -> None:
        super().__init__(message)
        self.missing_keys, self.unexpected_keys, self.mismatched = missing_keys, unexpected_keys, mismatched


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods of a Module: ``handle.remove()``
    unregisters the hook (a second call does nothing); as a context manager it removes the hook
    on leaving the block.

    Example::

        with model.c1.register_forward_hook(lambda m, args, out: maps.append(out)):
            model(x)                       # the hook runs here only
    """

    def __init__(self, hooks: dict, key: int) -> None:
        self._hooks = hooks
        self._key = key

    def remove(self) -> None:
        self._hooks.pop(self._key, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


class _BackwardHookState:
    """What one call of a module with backward hooks shares between its two identity nodes: the
    hooks as registered at the call, where the differentiable inputs and outputs sit among the
    Tensor arguments and results, and the output gradients once they are known."""

    __slots__ = ("module", "hooks", "pre_hooks", "n_inputs", "input_slots", "n_outputs", "output_slots", "grad_output")

    def __init__(self, module: Module, n_inputs: int, input_slots: list[int]) -> None:
        self.module = module
        self.hooks = list(module._backward_hooks.values())
        self.pre_hooks = list(module._backward_pre_hooks.values())
        self.n_inputs, self.input_slots = n_inputs, input_slots
        self.n_outputs = 0
        self.output_slots: list[int] = []
        self.grad_output: tuple | None = None

    def run_pre_hooks(self, grads: tuple) -> tuple:
        full: list[Any] = [None] * self.n_outputs
        for slot, g in zip(self.output_slots, grads):
            full[slot] = g
        grad_output = tuple(full)
        for hook in self.pre_hooks:
            res = hook(self.module, grad_output)
            if res is not None:
                grad_output = _checked_grads("backward pre-hook", hook, res, grad_output, "grad_output")
        self.grad_output = grad_output
        if not self.input_slots:  # no input needs a gradient: the hooks see grad_input all None now
            for hook in self.hooks:
                res = hook(self.module, (None,) * self.n_inputs, grad_output)
                if res is not None and not all(r is None for r in (res if isinstance(res, tuple) else (res,))):
                    raise RuntimeError(
                        f"full backward hook {hook!r}: no input of {type(self.module).__name__} requires grad, so the hook "
                        "must return None (or a tuple of Nones), not a replacement grad_input."
                    )
        return tuple(grad_output[s] for s in self.output_slots)

    def run_hooks(self, grads: tuple) -> tuple:
        full: list[Any] = [None] * self.n_inputs
        for slot, g in zip(self.input_slots, grads):
            full[slot] = g
        grad_input = tuple(full)
        grad_output = self.grad_output if self.grad_output is not None else (None,) * self.n_outputs
        for hook in self.hooks:
            res = hook(self.module, grad_input, grad_output)
            if res is not None:
                grad_input = _checked_grads("full backward hook", hook, res, grad_input, "grad_input")
        return tuple(grad_input[s] for s in self.input_slots)


def _checked_grads(kind: str, hook: Any, res: Any, old: tuple, what: str) -> tuple:
    """A hook's replacement gradients, checked: a tuple (or list) as long as ``old``."""
    new = tuple(res) if isinstance(res, (tuple, list)) else (res,)
    if len(new) != len(old):
        raise RuntimeError(f"{kind} {hook!r} returned {len(new)} gradient(s); it must return None or a tuple of {len(old)} ({what}).")
    for g, o in zip(new, old):
        if g is not None and not isinstance(g, Tensor):
            raise TypeError(f"{kind} {hook!r} must return Tensors or None in its tuple, got {type(g).__name__}.")
        if g is not None and o is not None and g.shape != o.shape:
            raise RuntimeError(f"{kind} {hook!r} returned a gradient of shape {g.shape} where {what} has shape {o.shape}.")
    return new


def _hook_vmap(info: Any, xs: tuple, state: Any) -> Any:
    """The batching rule of the two hook nodes: the identity on the whole batch, marked so that
    its backward can tell it was recorded under vmap."""
    return info.op.apply(*xs, state=state, under_vmap=True)


def _refuse_in_vmapped_grad(ctx: Any) -> None:
    """A hook node recorded under vmap and differentiated while vmap still runs (grad, vjp or
    jacobian inside vmap) would hand the hooks one gradient for the whole batch where the module
    saw one example; torch.func refuses backward hooks under its transforms, and so does this.
    A backward after vmap has returned runs them on the whole batch's gradients."""
    if ctx.params.get("under_vmap") and function_module.vmap_depth:
        module = type(ctx.params["state"].module).__name__
        raise RuntimeError(
            f"{module}: full backward hooks (register_full_backward_hook / register_full_backward_pre_hook) cannot run in a "
            "gradient taken inside vmap (grad, vjp or jacobian of a function under vmap): the hooks would see the whole "
            "batch's gradients where the module computed one example. torch.func refuses them likewise. Remove the hooks "
            "(handle.remove()) for the per-example computation, or call .backward() after vmap has returned."
        )


class BackwardHookInputs(Function):
    """The identity on the differentiable inputs of a module with full backward hooks; its
    backward is where those hooks see (and may replace) ``grad_input``. Recorded only while such
    hooks are registered."""

    @staticmethod
    def forward(ctx: Any, *xs: np.ndarray, state: Any = None, under_vmap: bool = False) -> Any:
        return tuple(x.view() for x in xs) if len(xs) > 1 else xs[0].view()

    @staticmethod
    def vmap(info: Any, *xs: Any, state: Any = None, under_vmap: bool = False) -> Any:
        return _hook_vmap(info, xs, state)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        _refuse_in_vmapped_grad(ctx)
        out = ctx.params["state"].run_hooks(grads)
        return out if len(out) > 1 else out[0]


class BackwardHookOutputs(Function):
    """The identity on the differentiable outputs of a module with backward hooks; its backward
    runs the backward pre-hooks on ``grad_output`` and keeps it for the full hooks."""

    forward = staticmethod(BackwardHookInputs.forward)  # the same identity; only backward differs
    vmap = staticmethod(BackwardHookInputs.vmap)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:
        _refuse_in_vmapped_grad(ctx)
        out = ctx.params["state"].run_pre_hooks(grads)
        return out if len(out) > 1 else out[0]


def _shape_of(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.shape
    if isinstance(out, (tuple, list)):
        shapes = [o.shape for o in out if isinstance(o, Tensor)]
        return tuple(shapes) if shapes else None
    return None


def _count(n: int) -> str:
    return f"{n:,}"


class Module:
    """Base class of all layers and models. Subclasses call ``super().__init__()`` first, assign
    Parameters / submodules / buffers (``register_buffer``) as attributes and define ``forward``.

    Calling the module runs ``forward`` inside ``autograd.module_scope(self)`` (so every recorded
    node knows which modules produced it) and records the output shape for ``repr``.
    """

    _hook_counter = 0

    def __init__(self) -> None:
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()  # id -> (hook, with_kwargs, always_call)
        d["_forward_hooks"] = OrderedDict()  # id -> (hook, with_kwargs, always_call)
        d["_backward_pre_hooks"] = OrderedDict()  # id -> hook
        d["_backward_hooks"] = OrderedDict()  # id -> hook
        d["training"] = True
        d["_output_shape"] = None

    # ---- attribute registration ---------------------------------------------------------------
    def _registries(self) -> tuple[dict, dict, dict]:
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(
                f"{type(self).__name__}: assign parameters and submodules only after calling "
                "super().__init__() at the top of __init__."
            )
        return d["_parameters"], d["_buffers"], d["_modules"]

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            params, bufs, mods = self._registries()
            self.__dict__.pop(name, None)
            bufs.pop(name, None)
            mods.pop(name, None)
            params[name] = value
        elif isinstance(value, Module):
            params, bufs, mods = self._registries()
            self.__dict__.pop(name, None)
            params.pop(name, None)
            bufs.pop(name, None)
            mods[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}.{name} is a Parameter; assign a Parameter (or None), not "
                    f"{type(value).__name__}. To change its values use `with no_grad(): "
                    f"module.{name}.copy_(new)`."
                )
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(np.asarray(value))
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a submodule; assign a Module (or None), not {type(value).__name__}.")
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: registered members live in the registries.
        d = self.__dict__
        for reg in ("_parameters", "_buffers", "_modules"):
            r = d.get(reg)
            if r is not None and name in r:
                return r[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for reg in ("_parameters", "_buffers", "_modules"):
            r = self.__dict__.get(reg)
            if r is not None and name in r:
                del r[name]
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, e.g. a disabled bias) under ``name``."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}.")
        self._registries()[0][name] = param
        self.__dict__.pop(name, None)

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Register non-learnable state (e.g. BatchNorm's running mean) under ``name``. Buffers are
        in ``state_dict()`` unless ``persistent=False``. Example: ``self.register_buffer('count', zeros(1))``."""
        _, bufs, _ = self._registries()
        if "." in name or not name:
            raise ValueError(f"register_buffer: name {name!r} must be non-empty and contain no '.'.")
        if tensor is not None and not isinstance(tensor, Tensor):
            tensor = Tensor(np.asarray(tensor))
        self.__dict__.pop(name, None)
        bufs[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def register_module(self, name: str, module: Module | None) -> None:
        """The same as :meth:`add_module` (PyTorch has both names)."""
        self.add_module(name, module)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` under ``name`` (what attribute assignment does)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}.")
        if "." in name or not name:
            raise ValueError(f"add_module: name {name!r} must be non-empty and contain no '.'.")
        self._registries()[2][name] = module
        self.__dict__.pop(name, None)

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of the module, called by ``module(*args)`` (which also runs the hooks).
        Every subclass defines it; the layers document their input and output shapes on the class."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward(); subclasses of Module must.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks:
            return self._call_with_hooks(args, kwargs)
        with module_scope(self):
            out = self.forward(*args, **kwargs)
        self.__dict__["_output_shape"] = _shape_of(out)
        return out

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """``__call__`` with the pre-hooks before ``forward`` and the forward hooks after it, each
        in registration order (PyTorch's rules for what a hook's return value replaces)."""
        for hook, with_kwargs, _ in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                res = hook(self, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError(
                            f"forward pre-hook {hook!r} registered with with_kwargs=True must return None or a tuple "
                            f"(new_args, new_kwargs), got {type(res).__name__}."
                        )
                    args, kwargs = res
            else:
                res = hook(self, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        state = None
        if (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled():
            args, state = self._wrap_inputs(args)
        try:
            with module_scope(self):
                out = self.forward(*args, **kwargs)
        except BaseException:
            # PyTorch's always_call: these hooks run (with output None) even when forward raised.
            for hook, with_kwargs, always in list(self._forward_hooks.values()):
                if always:
                    hook(self, args, kwargs, None) if with_kwargs else hook(self, args, None)
            raise
        self.__dict__["_output_shape"] = _shape_of(out)
        for hook, with_kwargs, _ in list(self._forward_hooks.values()):
            res = hook(self, args, kwargs, out) if with_kwargs else hook(self, args, out)
            if res is not None:
                out = res
        return out if state is None else self._wrap_outputs(out, state)

    def _wrap_inputs(self, args: tuple) -> tuple[tuple, _BackwardHookState]:
        """The positional arguments with the Tensors that require grad passed through the identity
        node whose backward runs the full backward hooks."""
        slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        state = _BackwardHookState(self, len(args), slots)
        if slots:
            wrapped = BackwardHookInputs.apply(*(args[i] for i in slots), state=state)
            wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
            new = list(args)
            for i, w in zip(slots, wrapped):
                new[i] = w
            args = tuple(new)
        return args, state

    def _wrap_outputs(self, out: Any, state: _BackwardHookState) -> Any:
        """The output (a Tensor or a tuple/list) with the Tensors that require grad passed through
        the identity node whose backward runs the backward pre-hooks."""
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        slots = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        state.n_outputs, state.output_slots = len(outs), slots
        if not slots:
            return out
        wrapped = BackwardHookOutputs.apply(*(outs[i] for i in slots), state=state)
        wrapped = wrapped if isinstance(wrapped, tuple) else (wrapped,)
        for i, w in zip(slots, wrapped):
            outs[i] = w
        if isinstance(out, Tensor):
            return outs[0]
        return type(out)(outs) if type(out) in (tuple, list) else tuple(outs)

    def _add_hook(
        self, hooks: OrderedDict, hook: Callable, with_kwargs: bool, prepend: bool = False, always_call: bool = False, bare: bool = False
    ) -> Any:
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}: a hook must be callable, got {type(hook).__name__}.")
        Module._hook_counter += 1
        hooks[Module._hook_counter] = hook if bare else (hook, bool(with_kwargs), bool(always_call))
        if prepend:
            hooks.move_to_end(Module._hook_counter, last=False)
        return RemovableHandle(hooks, Module._hook_counter)

    def register_forward_pre_hook(self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``, ``args`` being the positional
        arguments as a tuple. A non-None return replaces them: a tuple is the new arguments, any
        other value becomes the single argument. With ``with_kwargs=True`` the hook is
        ``hook(module, args, kwargs)`` and returns None or ``(new_args, new_kwargs)``. Hooks run in
        registration order (``prepend=True`` puts this one first), each seeing the previous one's
        arguments. Returns a :class:`RemovableHandle`.

        Example (scale every input of a layer by 0.5)::

            handle = net.c1.register_forward_pre_hook(lambda m, args: args[0] * 0.5)
            net(x)
            handle.remove()
        """
        return self._add_hook(self._forward_pre_hooks, hook, with_kwargs, prepend)

    def register_forward_hook(
        self, hook: Callable[..., Any], *, prepend: bool = False, with_kwargs: bool = False, always_call: bool = False
    ) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward`` (``args``: the positional
        arguments forward received, after any pre-hooks). A non-None return replaces the output
        for the caller and for the later hooks. With ``with_kwargs=True`` the hook is
        ``hook(module, args, kwargs, output)``. Hooks run in registration order (``prepend=True``
        puts this one first); with ``always_call=True`` the hook also runs, with output None,
        when forward raises (the exception then propagates). The output shape ``repr`` shows is
        forward's own. Returns a :class:`RemovableHandle`.

        Example (collect LeNet's C1 feature maps, (N, 6, 28, 28) each)::

            maps = []
            with net.c1.register_forward_hook(lambda m, args, out: maps.append(out)):
                net(x)
        """
        return self._add_hook(self._forward_hooks, hook, with_kwargs, prepend, always_call)

    def register_full_backward_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` once per backward through each call of
        this module, as PyTorch does: ``grad_input`` holds the gradients w.r.t. the module's
        positional Tensor inputs (``None`` for those that do not require grad), ``grad_output``
        those w.r.t. its Tensor outputs (after any backward pre-hooks). A returned tuple (one
        entry per input) replaces ``grad_input`` for the rest of backward; None keeps it. Hooks
        run in registration order (``prepend=True`` puts this one first) and are those
        registered when the module was called. Works under ``create_graph=True`` (the gradients
        are Tensors in the graph). Returns a :class:`RemovableHandle`.

        Example (halve the gradient that flows back into a layer's input, (N, 1, 28, 28))::

            net.c1.register_full_backward_hook(lambda m, gin, gout: (gin[0] * 0.5,))
        """
        return self._add_hook(self._backward_hooks, hook, False, prepend, bare=True)

    def register_full_backward_pre_hook(self, hook: Callable[..., Any], prepend: bool = False) -> RemovableHandle:
        """Call ``hook(module, grad_output)`` in backward before the module's gradients w.r.t. its
        inputs are computed, ``grad_output`` being the gradients w.r.t. its Tensor outputs
        (``None`` for outputs that do not require grad). A returned tuple (one entry per output)
        replaces ``grad_output``; None keeps it. Registration order as for
        :meth:`register_full_backward_hook`. Returns a :class:`RemovableHandle`.

        Example (clip the gradient arriving at a layer's output)::

            net.f6.register_full_backward_pre_hook(lambda m, gout: (gout[0].clamp(-1, 1),))
        """
        return self._add_hook(self._backward_pre_hooks, hook, False, prepend, bare=True)

    @property
    def output_shape(self) -> Any:
        """The shape of the last output of this module (None before the first call)."""
        return self._output_shape

    # ---- traversal (iterative) -----------------------------------------------------------------
    def named_modules(
        self, memo: set[Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for self (name ``prefix``) and every descendant, in
        definition order (pre-order). A module reachable twice is yielded once (with its
        submodules) unless ``remove_duplicate=False``; ``memo`` (PyTorch's) is a set of modules
        to skip, which the traversal extends."""
        seen: set[Module] = set() if memo is None else memo
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, m = stack.pop()
            if m in seen:
                continue
            if remove_duplicate:
                seen.add(m)
            yield name, m
            kids = [(f"{name}.{k}" if name else k, c) for k, c in m._modules.items() if c is not None]
            stack.extend(reversed(kids))

    def modules(self, remove_duplicate: bool = True) -> Iterator[Module]:
        """Self and every descendant module, in definition order."""
        for _, m in self.named_modules(remove_duplicate=remove_duplicate):
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` of the direct submodules."""
        seen: set[int] = set()
        for k, c in self._modules.items():
            if c is not None and id(c) not in seen:
                seen.add(id(c))
                yield k, c

    def children(self) -> Iterator[Module]:
        """The direct submodules, in definition order."""
        for _, c in self.named_children():
            yield c

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, Parameter)``, e.g. ``('conv1.weight', p)``; shared parameters once
        (under each name that reaches them with ``remove_duplicate=False``)."""
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mname, m in mods:
            for k, p in m._parameters.items():
                if p is None or (remove_duplicate and id(p) in seen):
                    continue
                seen.add(id(p))
                yield (f"{mname}.{k}" if mname else k), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of self and (with ``recurse``) all submodules; pass to an optimizer."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Yield ``(dotted_name, buffer_tensor)``, e.g. ``('bn1.running_mean', t)``; shared buffers
        once unless ``remove_duplicate=False``."""
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else iter([(prefix, self)])
        for mname, m in mods:
            for k, b in m._buffers.items():
                if b is None or (remove_duplicate and id(b) in seen):
                    continue
                seen.add(id(b))
                yield (f"{mname}.{k}" if mname else k), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers (``register_buffer``) of this module and, with ``recurse``, its submodules."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(m)`` on every submodule and self, each module after its children (PyTorch's
        post-order; a shared module once per place it appears, as there); returns self.
        Example: ``model.apply(lambda m: init.zeros_(m.bias) if isinstance(m, Linear) else None)``."""
        stack: list[tuple[Module, bool]] = [(self, False)]
        while stack:
            m, expanded = stack.pop()
            if expanded:
                fn(m)
                continue
            stack.append((m, True))
            stack.extend((c, False) for c in reversed([c for c in m._modules.values() if c is not None]))
        return self

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``''`` is self). Example: ``net.get_submodule('features.0')``."""
        m: Module = self
        if not target:
            return m
        walked: list[str] = []
        for part in target.split("."):
            child = m._modules.get(part) if isinstance(m, Module) else None
            if child is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(
                    f"get_submodule: {where} has no submodule {part!r} (path {target!r}); its children are {list(m._modules)}."
                )
            walked.append(part)
            m = child
        return m

    def get_parameter(self, target: str) -> Parameter:
        """The Parameter at dotted path ``target``. Example: ``net.get_parameter('fc.weight')``."""
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if m._parameters.get(name) is None:
            raise AttributeError(f"get_parameter: {mod or type(self).__name__} has no parameter {name!r}; it has {list(m._parameters)}.")
        return m._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target``. Example: ``net.get_buffer('bn.running_mean')``."""
        mod, _, name = target.rpartition(".")
        m = self.get_submodule(mod)
        if m._buffers.get(name) is None:
            raise AttributeError(f"get_buffer: {mod or type(self).__name__} has no buffer {name!r}; it has {list(m._buffers)}.")
        return m._buffers[name]

    # ---- modes and gradients ---------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on self and all submodules."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze all parameters."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the ``.grad`` of every parameter: to None (the default, as in PyTorch 2), or to
        zeros with ``set_to_none=False``."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor(np.zeros_like(p.data))

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalar parameters (shared ones counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``, as in PyTorch:
        cast all floating parameters and buffers to ``dtype`` in place (same Parameter objects, so
        an optimizer built before still holds them); the only device is the CPU (any other raises,
        naming it). Returns self. Example: ``model.to('cpu')``, ``model.to(tinygrad_cnn.float64)``."""
        dtype, dev = kwargs.pop("dtype", None), kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"Module.to: unexpected keyword argument(s) {sorted(kwargs)}; use dtype=, device=.")
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, device) or (isinstance(a, str) and a.split(":")[0] in _DEVICE_NAMES):
                dev = a
            elif a is not None:
                dtype = a
        if dev is not None:
            device(dev)  # raises for anything but the CPU
        if dtype is None:
            return self
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Module.to: dtype must be a floating type, got {dt}.")
        with no_grad():
            for t in list(self.parameters()) + list(self.buffers()):
                if t.data.dtype.kind == "f" and t.data.dtype != dt:
                    t.data = t.data.astype(dt)
                    t._version += 1
                    if t.grad is not None:
                        t.grad = Tensor(t.grad.data.astype(dt))
        return self

    def cpu(self) -> Module:
        """A no-op (everything is on the CPU); returns self."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Refused: tinygrad_cnn computes on the CPU only (the error says what to write instead)."""
        raise RuntimeError("Module.cuda: CUDA is not available; tinygrad_cnn computes with numpy on the CPU only. "
                           "Drop the .cuda() call (or use .to('cpu')).")

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64 (for gradient checks)."""
        return self.to(np.float64)

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16 in place; returns self."""
        return self.to(np.float16)

    def type(self, dst_type: Any) -> Module:
        """Cast all floating parameters and buffers to ``dst_type`` (a floating dtype) in place, as
        PyTorch's ``Module.type``; returns self. Example: ``model.type(tinygrad_cnn.float64)``."""
        return self.to(dst_type)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(
        self, *args: Any, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """An ordered dict ``dotted_name -> Tensor`` of every parameter and persistent buffer
        (written into ``destination`` and returned, if given; ``prefix`` is put before every key,
        e.g. ``'net.'``; PyTorch's deprecated positional form ``(destination, prefix, keep_vars)``
        is read too).

        The Tensors are detached and share memory with the module (``keep_vars=True`` gives the
        Parameter objects themselves). Shared parameters appear under each name that reaches them,
        as in PyTorch. Example: ``tinygrad_cnn.save(model.state_dict(), 'model.npz')``.
        """
        if args:
            if len(args) > 3:
                raise TypeError(f"state_dict: takes at most 3 positional arguments (destination, prefix, keep_vars), got {len(args)}.")
            given = [*args, *[destination, prefix, keep_vars][len(args):]]
            destination, prefix, keep_vars = given[0], given[1], given[2]
        out: Any = OrderedDict() if destination is None else destination
        for mname, m in self.named_modules(remove_duplicate=False):
            pre = prefix + (f"{mname}." if mname else "")
            for k, p in m._parameters.items():
                if p is not None:
                    out[pre + k] = p if keep_vars else p.detach()
            for k, b in m._buffers.items():
                if b is not None and k not in m._non_persistent:
                    out[pre + k] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> _IncompatibleKeys:
        """Copy values (Tensors or arrays) into the parameters and buffers, in place.

        Everything is checked before anything is written: missing keys, unexpected keys (both only
        with ``strict=True``) and shape mismatches (always) are all listed in one
        :class:`StateDictError` (a RuntimeError, as PyTorch raises, and a ValueError). Returns
        ``(missing_keys, unexpected_keys)``. With ``assign=True`` the parameters and buffers are
        replaced by new ones holding the given arrays (their dtype kept, ``requires_grad`` kept
        from the module's), instead of being copied into; an optimizer built before then holds
        the old ones, as in PyTorch.

        Example::

            result = model.load_state_dict(ck, strict=False)
            result.missing_keys            # e.g. ['fc.bias']
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping name -> array, got {type(state_dict).__name__}.")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched: list[tuple[str, tuple, tuple]] = []
        mismatch_text: list[str] = []
        not_numbers: list[str] = []
        values = {}
        for k, t in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            a = v.data if isinstance(v, Tensor) else np.asarray(v)
            if a.shape != t.shape:
                mismatched.append((k, a.shape, t.shape))
                mismatch_text.append(
                    f"size mismatch for {k}: copying a param with shape {a.shape} from checkpoint, the shape in current model is {t.shape}"
                )
            elif a.dtype.kind not in "biuf":
                not_numbers.append(f"{k}: checkpoint has dtype {a.dtype}")
            values[k] = a
        problems = []
        if strict and missing:
            problems.append(f"missing key(s) in state_dict (in the model, not in the state dict): {missing}")
        if strict and unexpected:
            problems.append(f"unexpected key(s) in state_dict (in the state dict, not in the model): {unexpected}")
        if mismatched:
            problems.append("shape mismatches: " + "; ".join(mismatch_text))
        if not_numbers:
            problems.append("values that are not numbers: " + "; ".join(not_numbers))
        if problems:
            raise StateDictError(
                f"load_state_dict: error(s) in loading state_dict for {type(self).__name__}:\n  - "
                + "\n  - ".join(problems)
                + "\nNothing was loaded. Check that the checkpoint was saved from the same architecture"
                + (" (or pass strict=False to skip missing/unexpected keys)." if not (mismatched or not_numbers) else "."),
                missing if strict else [],
                unexpected if strict else [],
                mismatched,
            )
        if assign:
            owners = {n: m for n, m in self.named_modules(remove_duplicate=False)}
            for k, a in values.items():
                mname, _, attr = k.rpartition(".")
                m = owners[mname]
                if attr in m._parameters:
                    m._parameters[attr] = Parameter(a.copy(), requires_grad=m._parameters[attr].requires_grad)
                else:
                    m._buffers[attr] = Tensor(a.copy())
            return _IncompatibleKeys(missing, unexpected)
        with no_grad():
            for k, a in values.items():
                own[k].copy_(a)
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ----------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The layer's arguments shown inside its repr, e.g. ``'4, 8, bias=True'``."""
        return ""

    def _info(self) -> str:
        parts = []
        if self._output_shape is not None:
            parts.append(f"out={self._output_shape}")
        n = self.num_parameters()
        if n:
            parts.append(f"params={_count(n)}")
        return ("  # " + ", ".join(parts)) if parts else ""

    def __repr__(self) -> str:
        lines = []
        for k, m in self._modules.items():
            body = repr(m) if m is not None else "None"
            body = body.replace("\n", "\n  ")
            lines.append(f"  ({k}): {body}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")" + self._info()
        return head + "\n" + "\n".join(lines) + "\n)" + self._info()

    def summary(self, input_shape: tuple[int, ...], dtype: Any = np.float32) -> str:
        """A markdown table of the leaf layers in call order with output shapes and parameter
        counts, from one forward pass of a zero batch of shape ``(1, *input_shape)`` in eval mode.

        Example: ``print(SimpleConvNet().summary((1, 28, 28)))``.
        """
        rows: list[tuple[str, str, Any, int]] = []
        names = {id(m): n for n, m in self.named_modules()}
        handles = []
        for _, m in self.named_modules():
            if not any(True for _ in m.children()):

                def hook(mod: Module, inp: tuple, out: Any) -> None:
                    desc = f"{type(mod).__name__}({mod.extra_repr()})"
                    rows.append((names[id(mod)], desc, _shape_of(out), mod.num_parameters()))

                handles.append(m.register_forward_hook(hook))
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                x = Tensor(np.zeros((1, *input_shape), dtype=dtype))
                self(x)
        finally:
            for h in handles:
                h.remove()
            self.train(was_training)
        fmt = lambda s: "(" + ", ".join(str(d) for d in s) + ")" if isinstance(s, tuple) else str(s)  # noqa: E731
        out = ["| layer | type | output shape | parameters |", "|---|---|---|---:|"]
        out.append(f"| input | | {fmt((1, *input_shape))} | |")
        for name, desc, shape, n in rows:
            out.append(f"| {name} | {desc} | {fmt(shape)} | {_count(n)} |")
        out.append(f"| **total** | | | **{_count(self.num_parameters())}** |")
        return "\n".join(out)


# ---- containers ----------------------------------------------------------------------------------
class Sequential(Module):
    """Modules applied in order. ``Sequential(a, b, c)`` names them '0', '1', '2';
    ``Sequential(OrderedDict(conv=..., relu=...))`` uses the given names.

    Example::

        net = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
        y = net(x)          # (N, 4) -> (N, 2)
    """

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], Mapping):
            for k, m in args[0].items():
                self.add_module(str(k), _check_module("Sequential", k, m))
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), _check_module("Sequential", i, m))

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            x = m(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        """``seq[i]`` is the i-th module (negative counts from the end); ``seq[a:b]`` a new
        Sequential of the same module objects, keeping their names, as in PyTorch."""
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return Sequential(OrderedDict(items[idx]))
        return items[_index("Sequential", idx, len(items))][1]

    def __setitem__(self, idx: int, module: Module) -> None:
        """Replace the i-th module, keeping its name. Example: ``seq[-1] = Linear(84, 2)``."""
        keys = list(self._modules)
        key = keys[_index("Sequential", idx, len(keys))]
        self._modules[key] = _check_module("Sequential", idx, module)

    def __delitem__(self, idx: int | slice) -> None:
        """Remove the module(s) at ``idx``; the rest are renumbered '0', '1', ... as in PyTorch."""
        keys = list(self._modules)
        doomed = keys[idx] if isinstance(idx, slice) else [keys[_index("Sequential", idx, len(keys))]]
        for k in doomed:
            del self._modules[k]
        self._renumber()

    def _renumber(self) -> None:
        mods = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self._modules)), _check_module("Sequential", len(self._modules), module))
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Append each of ``modules``; returns self."""
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        """Insert ``module`` before position ``index`` (``len(self)`` appends); the modules are
        renumbered '0', '1', ... as in PyTorch. Returns self."""
        n = len(self._modules)
        if not isinstance(index, (int, np.integer)) or not -n <= index <= n:
            raise IndexError(f"Sequential.insert: index {index!r} out of range for {n} modules.")
        mods = list(self._modules.values())
        mods.insert(int(index) + n if index < 0 else int(index), _check_module("Sequential", index, module))
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m
        return self

    def pop(self, index: int = -1) -> Module:
        """Remove and return the module at ``index`` (default the last)."""
        m = self[index]
        del self[index]
        return m


class ModuleList(Module):
    """A list of modules whose parameters are registered (names '0', '1', ...). It has no
    forward: iterate it in your own ``forward``.

    Example::

        self.blocks = ModuleList([Linear(8, 8) for _ in range(3)])
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ModuleList is a container without forward(); iterate over it in your module's forward().")

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, idx: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(idx, slice):
            return ModuleList(items[idx])
        return items[_index("ModuleList", idx, len(items))]

    def __setitem__(self, idx: int, module: Module) -> None:
        i = _index("ModuleList", idx, len(self._modules))
        self.add_module(str(i), _check_module("ModuleList", i, module))

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self._modules)), _check_module("ModuleList", len(self._modules), module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add ``modules`` at the end, in order; returns self."""
        for m in modules:
            self.append(m)
        return self

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __delitem__(self, idx: int | slice) -> None:
        """Remove the module(s) at ``idx``; the rest are renumbered '0', '1', ... as in PyTorch."""
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            del mods[idx]
        else:
            del mods[_index("ModuleList", idx, len(mods))]
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (``len(self)`` appends), renumbering the rest."""
        n = len(self._modules)
        if not isinstance(index, (int, np.integer)) or not -n <= index <= n:
            raise IndexError(f"ModuleList.insert: index {index!r} out of range for {n} modules.")
        mods = list(self._modules.values())
        mods.insert(int(index) + n if index < 0 else int(index), _check_module("ModuleList", index, module))
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def pop(self, index: int = -1) -> Module:
        """Remove and return the module at ``index`` (default the last)."""
        m = self[index]
        del self[index]
        return m


class ModuleDict(Module):
    """A dict of modules whose parameters are registered under their keys (insertion order).

    Example::

        self.heads = ModuleDict({'digit': Linear(64, 10), 'parity': Linear(64, 2)})
    """

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("ModuleDict is a container without forward(); pick modules by key in your module's forward().")

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no key {key!r}; keys are {list(self._modules)}.")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, _check_module("ModuleDict", key, module))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        """The keys, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """``(key, module)`` pairs, in insertion order."""
        return self._modules.items()

    def update(self, modules: Mapping[str, Module]) -> None:
        """Add or replace the modules of the mapping ``modules``."""
        for k, m in modules.items():
            self[k] = m

    def pop(self, key: str) -> Module:
        """Remove the module under ``key`` and return it."""
        m = self[key]
        del self._modules[key]
        return m

    def clear(self) -> None:
        """Remove every module."""
        self._modules.clear()


_DEVICE_NAMES = ("cpu", "cuda", "mps", "xpu", "meta", "hip", "xla", "ipu", "vulkan", "mkldnn", "opengl", "opencl", "ideep", "hpu", "mtia")


def _check_module(container: str, key: Any, m: Any) -> Module:
    if not isinstance(m, Module):
        raise TypeError(f"{container}: entry {key!r} is a {type(m).__name__}, not a Module.")
    return m


def _index(container: str, idx: int, n: int) -> int:
    if not isinstance(idx, (int, np.integer)) or not -n <= idx < n:
        raise IndexError(f"{container}: index {idx!r} out of range for {n} modules.")
    return int(idx) % n

