"""Pytrees: nested containers (dicts, lists, tuples, namedtuples, None) holding leaves.

A *pytree* is any nesting of ``dict`` (also ``OrderedDict``/``defaultdict``), ``list``, ``tuple``
and namedtuple, with arbitrary other objects (Tensors, numpy arrays, Python numbers) at the
leaves. ``None`` is an empty subtree, not a leaf (as in JAX). Other classes become containers
with :func:`register_pytree_node`; unregistered classes, including subclasses of dict/list, are
leaves.

Dicts keep their *insertion order* (JAX sorts keys; here ``state_dict()`` order is what users
see and expect). When several trees are combined (``tree_map``, :meth:`PyTreeDef.flatten_up_to`)
dicts are matched by key, so the same keys in a different order still line up.

Example::

    params = {"conv1": {"w": w1, "b": b1}, "fc": [w2, None]}
    leaves, treedef = tree_flatten(params)       # [w1, b1, w2], PyTreeDef({'conv1': {...}, ...})
    doubled = tree_map(lambda a: a * 2, params)  # same structure, every leaf doubled

Everything here is iterative: tree depth is not limited by Python's recursion limit.
"""
from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DictKey",
    "GetAttrKey",
    "PyTreeDef",
    "SequenceKey",
    "keystr",
    "register_pytree_node",
    "tree_flatten",
    "tree_flatten_with_path",
    "tree_leaves",
    "tree_map",
    "tree_map_with_path",
    "tree_structure",
    "tree_unflatten",
]

# Node kinds of a flattened tree definition.
_LEAF, _NONE, _DICT, _LIST, _TUPLE, _NAMEDTUPLE, _CUSTOM = range(7)
_DICT_TYPES = (dict, OrderedDict, defaultdict)
_LEAF_NODE = (_LEAF, None, 0)
_NONE_NODE = (_NONE, None, 0)

# cls -> (flatten(obj) -> (children, aux_data), unflatten(aux_data, children) -> obj)
_REGISTRY: dict[type, tuple[Callable, Callable]] = {}


# ---- path keys ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DictKey:
    """A step into a dict: renders as ``['conv1']``."""

    key: Any

    def __str__(self) -> str:
        return f"[{self.key!r}]"


@dataclass(frozen=True)
class SequenceKey:
    """A step into a list, tuple or registered class: renders as ``[0]``."""

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx}]"


@dataclass(frozen=True)
class GetAttrKey:
    """A step into a namedtuple field: renders as ``.weight``."""

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


def keystr(path: Iterable[Any], root: str = "") -> str:
    """Render a key path, e.g. ``keystr(path, "params")`` -> ``"params['conv1']['b']"``."""
    return root + "".join(str(k) for k in path)


def register_pytree_node(cls: type, flatten: Callable[[Any], tuple[Iterable[Any], Any]], unflatten: Callable[[Any, list], Any]) -> None:
    """Make instances of ``cls`` pytree containers.

    ``flatten(obj) -> (children, aux_data)`` where ``aux_data`` is hashable and comparable;
    ``unflatten(aux_data, children) -> obj``. Example::

        register_pytree_node(Pair, lambda p: ((p.a, p.b), None), lambda aux, ch: Pair(*ch))
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_pytree_node: expected a class, got {cls!r}.")
    if cls in _DICT_TYPES or cls in (list, tuple, type(None)) or cls in _REGISTRY:
        raise ValueError(f"register_pytree_node: {cls.__name__} is already a pytree node type.")
    _REGISTRY[cls] = (flatten, unflatten)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _classify(x: Any) -> tuple[int, Any, list, list]:
    """(kind, aux, children, path keys) of one object."""
    t = type(x)
    if x is None:
        return _NONE, None, [], []
    if t in _DICT_TYPES:
        keys = tuple(x)
        extra = x.default_factory if t is defaultdict else None
        return _DICT, (t, keys, extra), [x[k] for k in keys], [DictKey(k) for k in keys]
    if t is list:
        return _LIST, None, list(x), [SequenceKey(i) for i in range(len(x))]
    if t is tuple:
        return _TUPLE, None, list(x), [SequenceKey(i) for i in range(len(x))]
    if _is_namedtuple(x):
        return _NAMEDTUPLE, t, list(x), [GetAttrKey(f) for f in t._fields]
    reg = _REGISTRY.get(t)
    if reg is not None:
        children, aux = reg[0](x)
        children = list(children)
        return _CUSTOM, (t, aux), children, [SequenceKey(i) for i in range(len(children))]
    return _LEAF, None, [], []


def _build(kind: int, aux: Any, children: list) -> Any:
    if kind == _DICT:
        t, keys, extra = aux
        if t is defaultdict:
            return defaultdict(extra, zip(keys, children))
        return t(zip(keys, children))
    if kind == _LIST:
        return children
    if kind == _TUPLE:
        return tuple(children)
    if kind == _NAMEDTUPLE:
        return aux(*children)
    cls, data = aux
    return _REGISTRY[cls][1](data, children)


def _describe_node(node: tuple) -> str:
    kind, aux, n = node
    if kind == _LEAF:
        return "a leaf"
    if kind == _NONE:
        return "None"
    if kind == _DICT:
        return f"a dict with keys {list(aux[1])}"
    if kind == _LIST:
        return f"a list of length {n}"
    if kind == _TUPLE:
        return f"a tuple of length {n}"
    if kind == _NAMEDTUPLE:
        return f"a {aux.__name__} namedtuple"
    return f"a {aux[0].__name__}"


def describe(x: Any) -> str:
    """A short description of an object for error messages (``'a Tensor of shape (2, 3)'``)."""
    if x is None:
        return "None"
    shape = getattr(x, "shape", None)
    if shape is not None and hasattr(x, "dtype"):
        return f"a {type(x).__name__} of shape {tuple(shape)} and dtype {x.dtype}"
    kind, aux, children, _ = _classify(x)
    if kind == _LEAF:
        return f"a {type(x).__name__} ({x!r})" if isinstance(x, (int, float, complex, str, bool)) else f"a {type(x).__name__}"
    return _describe_node((kind, aux, len(children)))


class _Star:
    def __repr__(self) -> str:
        return "*"


class PyTreeDef:
    """The structure of a pytree without its leaves (from :func:`tree_flatten`).

    Stored as the nodes in pre-order; ``num_leaves`` counts the leaves. Two definitions are
    equal when the structures are identical (dict key order included). Example::

        leaves, treedef = tree_flatten({"a": 1.0, "b": (2.0, None)})
        treedef.unflatten([10.0, 20.0])     # {'a': 10.0, 'b': (20.0, None)}
    """

    __slots__ = ("_nodes", "num_leaves")

    def __init__(self, nodes: tuple) -> None:
        self._nodes = nodes
        self.num_leaves = sum(1 for k, _, _ in nodes if k == _LEAF)

    @property
    def num_nodes(self) -> int:
        return len(self._nodes)

    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """Rebuild the tree with ``leaves`` (in ``tree_flatten`` order) at the leaf positions."""
        leaves = list(leaves)
        if len(leaves) != self.num_leaves:
            raise ValueError(
                f"tree_unflatten: the structure {self!r} has {self.num_leaves} leaves but {len(leaves)} "
                "were given; pass exactly one value per leaf, in tree_flatten order."
            )
        out: list = []
        li = len(leaves)
        # Reversed pre-order: every container finds its children on top of the stack, first child first.
        for kind, aux, n in reversed(self._nodes):
            if kind == _LEAF:
                li -= 1
                out.append(leaves[li])
            elif kind == _NONE:
                out.append(None)
            else:
                children = [out.pop() for _ in range(n)]
                out.append(_build(kind, aux, children))
        return out[0]

    def flatten_up_to(self, tree: Any, *, is_leaf: Callable[[Any], bool] | None = None, name: str = "tree", op: str = "pytree") -> list:
        """The leaves of ``tree``, which must have this structure (dicts are matched by key).

        A mismatch raises ``ValueError`` naming the path, e.g. ``grads['conv1']['b']: expected a
        leaf, got a dict with keys ['w']``; ``name`` is the root of that path, ``op`` the caller.
        """
        nodes = self._nodes
        leaves: list = []
        stack: list = [(tree, ())]
        i = 0
        while stack:
            x, path = stack.pop()
            node = nodes[i]
            i += 1
            kind, aux, n = node
            forced = is_leaf is not None and is_leaf(x)
            if kind == _LEAF:
                if not forced and _classify_kind(x) != _LEAF:
                    raise _mismatch(op, name, path, node, x)
                leaves.append(x)
                continue
            if forced:
                raise _mismatch(op, name, path, node, x)
            kind2, aux2, children, keys = _classify(x)
            if kind2 != kind:
                raise _mismatch(op, name, path, node, x)
            if kind == _DICT:
                want = aux[1]
                if keys != [DictKey(k) for k in want]:
                    have = set(x)
                    missing = [k for k in want if k not in have]
                    extra = [k for k in x if k not in set(want)]
                    if missing or extra:
                        detail = "; ".join(
                            s for s in (f"missing keys {missing}" if missing else "", f"unexpected keys {extra}" if extra else "") if s
                        )
                        raise ValueError(f"{op}: {keystr(path, name)}: dict keys do not match the expected structure ({detail}).")
                    children = [x[k] for k in want]
                    keys = [DictKey(k) for k in want]
            elif kind in (_LIST, _TUPLE):
                if len(children) != n:
                    raise _mismatch(op, name, path, node, x)
            elif kind == _NAMEDTUPLE:
                if aux2 is not aux:
                    raise _mismatch(op, name, path, node, x)
            elif kind == _CUSTOM and aux2 != aux:
                raise _mismatch(op, name, path, node, x)
            for c, k in zip(reversed(children), reversed(keys)):
                stack.append((c, path + (k,)))
        return leaves

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PyTreeDef) and self._nodes == other._nodes

    def __hash__(self) -> int:
        return hash(self._nodes)

    def __repr__(self) -> str:
        return f"PyTreeDef({self.unflatten([_Star()] * self.num_leaves)!r})"


def _classify_kind(x: Any) -> int:
    t = type(x)
    if x is None:
        return _NONE
    if t in _DICT_TYPES:
        return _DICT
    if t is list:
        return _LIST
    if t is tuple:
        return _TUPLE
    if _is_namedtuple(x):
        return _NAMEDTUPLE
    if t in _REGISTRY:
        return _CUSTOM
    return _LEAF


def _mismatch(op: str, name: str, path: tuple, node: tuple, x: Any) -> ValueError:
    return ValueError(
        f"{op}: pytree structure mismatch at {keystr(path, name)}: expected {_describe_node(node)}, got {describe(x)}. "
        "The trees must have the same nesting of dicts/lists/tuples/None."
    )


def _flatten(tree: Any, is_leaf: Callable[[Any], bool] | None, with_path: bool) -> tuple[list, list, PyTreeDef]:
    nodes: list = []
    leaves: list = []
    paths: list = []
    stack: list = [(tree, ())]
    while stack:
        x, path = stack.pop()
        if is_leaf is not None and is_leaf(x):
            kind = _LEAF
        else:
            kind = _classify_kind(x)
        if kind == _LEAF:
            nodes.append(_LEAF_NODE)
            leaves.append(x)
            if with_path:
                paths.append(path)
            continue
        if kind == _NONE:
            nodes.append(_NONE_NODE)
            continue
        kind, aux, children, keys = _classify(x)
        nodes.append((kind, aux, len(children)))
        if with_path:
            for c, k in zip(reversed(children), reversed(keys)):
                stack.append((c, path + (k,)))
        else:
            for c in reversed(children):
                stack.append((c, ()))
    return leaves, paths, PyTreeDef(tuple(nodes))


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list, PyTreeDef]:
    """Split a pytree into its leaves (depth-first, dicts in insertion order) and its structure.

    ``is_leaf(x) -> True`` stops the descent at ``x``. Example::

        leaves, treedef = tree_flatten({"w": w, "b": [b, None]})   # [w, b], PyTreeDef({'w': *, 'b': [*, None]})
    """
    leaves, _, treedef = _flatten(tree, is_leaf, False)
    return leaves, treedef


def tree_flatten_with_path(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> tuple[list[tuple[tuple, Any]], PyTreeDef]:
    """Like :func:`tree_flatten`, but each leaf comes with its key path (see :func:`keystr`).

    Example::

        pairs, _ = tree_flatten_with_path({"conv1": {"b": b}})
        keystr(pairs[0][0], "params")      # "params['conv1']['b']"
    """
    leaves, paths, treedef = _flatten(tree, is_leaf, True)
    return list(zip(paths, leaves)), treedef


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Any]) -> Any:
    """Inverse of :func:`tree_flatten`: ``tree_unflatten(treedef, leaves)`` rebuilds the tree."""
    if not isinstance(treedef, PyTreeDef):
        raise TypeError(f"tree_unflatten: expected a PyTreeDef (from tree_flatten) as first argument, got {type(treedef).__name__}.")
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> list:
    """The leaves of ``tree`` in flatten order. Example: ``tree_leaves([1.0, {"a": 2.0}])`` -> ``[1.0, 2.0]``."""
    return _flatten(tree, is_leaf, False)[0]


def tree_structure(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> PyTreeDef:
    """The structure of ``tree`` (its :class:`PyTreeDef`). Example: ``tree_structure((1.0, None))``."""
    return _flatten(tree, is_leaf, False)[2]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """Apply ``f`` leaf-wise: ``f(leaf, *matching leaves of rest)``; the result has ``tree``'s structure.

    Every tree in ``rest`` must have ``tree``'s structure (dicts matched by key); a mismatch
    raises ``ValueError`` naming the path. Example::

        new = tree_map(lambda p, g: p - 0.1 * g, params, grads)
    """
    leaves, _, treedef = _flatten(tree, is_leaf, False)
    others = [treedef.flatten_up_to(r, is_leaf=is_leaf, name=f"tree{i + 1}", op="tree_map") for i, r in enumerate(rest)]
    return treedef.unflatten([f(*xs) for xs in zip(leaves, *others)])


def tree_map_with_path(f: Callable[..., Any], tree: Any, *rest: Any, is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """Like :func:`tree_map`, but calls ``f(path, leaf, *others)`` with the leaf's key path.

    Example: ``tree_map_with_path(lambda p, x: keystr(p), {"a": 1.0})`` -> ``{'a': "['a']"}``.
    """
    leaves, paths, treedef = _flatten(tree, is_leaf, True)
    others = [treedef.flatten_up_to(r, is_leaf=is_leaf, name=f"tree{i + 1}", op="tree_map_with_path") for i, r in enumerate(rest)]
    return treedef.unflatten([f(p, *xs) for p, *xs in zip(paths, leaves, *others)])
