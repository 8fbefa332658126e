from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.pytree import (
    PyTreeDef,
    keystr,
    register_pytree_node,
    tree_flatten,
    tree_flatten_with_path,
    tree_leaves,
    tree_map,
    tree_map_with_path,
    tree_structure,
    tree_unflatten,
)

Point = namedtuple("Point", ["x", "y"])

leaf = st.one_of(st.floats(allow_nan=False, width=32), st.integers(-5, 5).map(lambda i: np.full((2,), i, dtype=np.float64)))
trees = st.recursive(
    st.one_of(leaf, st.none()),
    lambda ch: st.one_of(
        st.lists(ch, max_size=3),
        st.lists(ch, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abcdef"), ch, max_size=3),
        st.tuples(ch, ch).map(lambda t: Point(*t)),
    ),
    max_leaves=12,
)


def _same(a, b):
    """Structural equality, types included, arrays compared by value."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        assert type(x) is type(y), (x, y)
        if isinstance(x, dict):
            assert list(x) == list(y)
            stack += [(x[k], y[k]) for k in x]
        elif isinstance(x, (list, tuple)):
            assert len(x) == len(y)
            stack += list(zip(x, y))
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y


@given(trees)
def test_flatten_unflatten_roundtrip_keeps_types_and_order(tree):
    leaves, treedef = tree_flatten(tree)
    assert treedef.num_leaves == len(leaves)
    _same(tree_unflatten(treedef, leaves), tree)
    assert tree_structure(tree) == treedef
    again = tree_leaves(tree)
    assert len(again) == len(leaves) and all(x is y for x, y in zip(again, leaves))
    # tree_map with identity rebuilds an equal tree; with two trees it pairs the same leaves.
    _same(tree_map(lambda v: v, tree), tree)
    same = tree_leaves(tree_map(lambda u, v: u is v, tree, tree))
    assert same == [True] * len(leaves)


@given(trees)
def test_paths_address_the_leaves(tree):
    pairs, treedef = tree_flatten_with_path(tree)
    assert len(pairs) == treedef.num_leaves
    assert all(v is w for (_, v), w in zip(pairs, tree_leaves(tree)))
    for path, v in pairs:
        # Follow the path by hand: each key is a dict key, an index or a namedtuple field.
        node = tree
        for k in path:
            node = getattr(node, k.name) if hasattr(k, "name") else node[k.key if hasattr(k, "key") else k.idx]
        assert node is v


def test_flatten_order_dict_insertion_none_is_empty():
    w, b = tg.tensor([1.0]), np.zeros(2)
    tree = {"z": w, "a": [None, b, 3.0], "m": Point(1.0, None)}
    leaves, treedef = tree_flatten(tree)
    assert leaves[0] is w and leaves[1] is b and leaves[2:] == [3.0, 1.0]
    assert treedef.num_leaves == 4
    assert repr(treedef) == "PyTreeDef({'z': *, 'a': [None, *, *], 'm': Point(x=*, y=None)})"
    assert tree_leaves(None) == [] and tree_unflatten(tree_structure(None), []) is None
    # A bare leaf is a tree of one leaf.
    assert tree_leaves(w)[0] is w and tree_structure(w).num_leaves == 1


def test_ordered_and_default_dicts_keep_their_type():
    od = OrderedDict([("b", 1.0), ("a", 2.0)])
    dd = defaultdict(list, {"x": 1.0})
    out = tree_map(lambda v: v * 10, {"od": od, "dd": dd})
    assert type(out["od"]) is OrderedDict and list(out["od"]) == ["b", "a"] and out["od"]["a"] == 20.0
    assert type(out["dd"]) is defaultdict and out["dd"].default_factory is list and out["dd"]["x"] == 10.0


def test_tree_map_matches_dicts_by_key_not_order():
    a = {"w": 1.0, "b": 2.0}
    b = {"b": 20.0, "w": 10.0}
    assert tree_map(lambda x, y: x + y, a, b) == {"w": 11.0, "b": 22.0}
    # Different order is a different (but compatible) structure.
    assert tree_structure(a) != tree_structure(b)


def test_mismatch_errors_name_the_path():
    params = {"conv1": {"w": 1.0, "b": 2.0}, "fc": [3.0, 4.0]}
    with pytest.raises(ValueError, match=r"tree1\['conv1'\]\['b'\]: expected a leaf, got a dict"):
        tree_map(lambda x, y: x, params, {"conv1": {"w": 1.0, "b": {"x": 1.0}}, "fc": [3.0, 4.0]})
    with pytest.raises(ValueError, match=r"tree1\['fc'\]: expected a list of length 2, got a list of length 3"):
        tree_map(lambda x, y: x, params, {"conv1": {"w": 1.0, "b": 2.0}, "fc": [3.0, 4.0, 5.0]})
    with pytest.raises(ValueError, match=r"tree1\['conv1'\].*missing keys \['b'\].*unexpected keys \['bias'\]"):
        tree_map(lambda x, y: x, params, {"conv1": {"w": 1.0, "bias": 2.0}, "fc": [3.0, 4.0]})
    with pytest.raises(ValueError, match=r"tree1\['fc'\]\[1\]: expected a leaf, got None"):
        tree_map(lambda x, y: x, params, {"conv1": {"w": 1.0, "b": 2.0}, "fc": [3.0, None]})
    with pytest.raises(ValueError, match=r"expected a list of length 2, got a tuple"):
        tree_map(lambda x, y: x, params, {"conv1": {"w": 1.0, "b": 2.0}, "fc": (3.0, 4.0)})
    Other = namedtuple("Other", ["x", "y"])
    with pytest.raises(ValueError, match=r"tree1: expected a Point namedtuple, got a Other"):
        tree_map(lambda x, y: x, Point(1.0, 2.0), Other(1.0, 2.0))


def test_unflatten_wrong_leaf_count_and_bad_treedef():
    _, treedef = tree_flatten([1.0, 2.0])
    with pytest.raises(ValueError, match="has 2 leaves but 3 were given"):
        tree_unflatten(treedef, [1, 2, 3])
    with pytest.raises(TypeError, match="PyTreeDef"):
        tree_unflatten([1.0], [1.0])


def test_keystr_and_map_with_path():
    pairs, _ = tree_flatten_with_path({"conv1": {"b": 1.0}, "seq": [0.0, Point(2.0, 3.0)]})
    strs = [keystr(p, "params") for p, _ in pairs]
    assert strs == ["params['conv1']['b']", "params['seq'][0]", "params['seq'][1].x", "params['seq'][1].y"]
    assert tree_map_with_path(lambda p, x: keystr(p), {"a": [1.0]}) == {"a": ["['a'][0]"]}


def test_is_leaf_stops_descent_in_all_trees():
    tree = {"a": (1.0, 2.0), "b": (3.0, 4.0)}
    out = tree_map(lambda t, u: t[0] + u[1], tree, tree, is_leaf=lambda x: isinstance(x, tuple))
    assert out == {"a": 3.0, "b": 7.0}
    assert tree_leaves(tree, is_leaf=lambda x: isinstance(x, tuple)) == [(1.0, 2.0), (3.0, 4.0)]


def test_registered_class_is_a_container():
    class Pair:
        def __init__(self, a, b):
            self.a, self.b = a, b

    register_pytree_node(Pair, lambda p: ((p.a, p.b), "tag"), lambda aux, ch: Pair(*ch))
    out = tree_map(lambda x: x + 1, [Pair(1.0, Pair(2.0, 3.0))])
    assert out[0].a == 2.0 and out[0].b.b == 4.0
    assert tree_structure(Pair(1.0, 2.0)).num_leaves == 2
    with pytest.raises(ValueError, match="already a pytree node"):
        register_pytree_node(dict, None, None)


def test_deep_nesting_is_iterative():
    tree = 1.0
    for _ in range(20000):
        tree = [tree]
    leaves, treedef = tree_flatten(tree)
    assert leaves == [1.0] and treedef.num_nodes == 20001
    out = tree_map(lambda x, y: x + y, tree, tree)
    assert tree_leaves(out) == [2.0]
    assert isinstance(treedef, PyTreeDef) and hash(treedef) == hash(tree_structure(tree))
