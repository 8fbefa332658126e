"""Passes over the exported ONNX nodes: composite functions that our primitives spell out become
their ONNX counterparts (softmax, log_softmax, linear as Gemm, gelu), and nodes and initializers
no output depends on are dropped."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import helper

__all__ = ["prune", "run"]


class _Graph:
    def __init__(self, em: Any) -> None:
        self.em = em
        self.producer = {o: n for n in em.nodes for o in n.output}
        self.users: dict[str, list] = {}
        for n in em.nodes:
            for i in n.input:
                self.users.setdefault(i, []).append(n)

    def src(self, name: str, op_type: str) -> Any:
        n = self.producer.get(name)
        return n if n is not None and n.op_type == op_type else None

    def only_used_by(self, name: str, *nodes: Any) -> bool:
        return all(any(u is n for n in nodes) for u in self.users.get(name, []))

    def const(self, name: str) -> np.ndarray | None:
        return self.em.inits.get(name)

    def attr(self, node: Any, key: str, default: Any = None) -> Any:
        for a in node.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    def axes(self, node: Any) -> list | None:
        if len(node.input) < 2:
            return None
        c = self.const(node.input[1])
        return None if c is None else [int(v) for v in c.reshape(-1)]

    def scalar(self, name: str) -> float | None:
        c = self.const(name)
        return float(c) if c is not None and c.size == 1 and c.ndim == 0 else None


def _replace(em: Any, remove: list, new: Any, before: Any) -> None:
    gone = {id(n) for n in remove}
    at = next(i for i, n in enumerate(em.nodes) if n is before)
    em.nodes.insert(at, new)
    em.nodes[:] = [n for n in em.nodes if id(n) not in gone]


def _softmax_family(g: _Graph) -> bool:
    """``exp(x - max) / sum(exp(x - max))`` -> Softmax; ``s - log(sum(exp(s)))`` with ``s = x - max`` -> LogSoftmax."""
    for n in list(g.em.nodes):
        if n.op_type == "Div":
            e, z = g.src(n.input[0], "Exp"), g.src(n.input[1], "ReduceSum")
            if e is None or z is None or z.input[0] != e.output[0]:
                continue
            s, tail = g.src(e.input[0], "Sub"), [n, z, e]
        elif n.op_type == "Sub":
            lg = g.src(n.input[1], "Log")
            z = g.src(lg.input[0], "ReduceSum") if lg is not None else None
            e = g.src(z.input[0], "Exp") if z is not None else None
            if e is None or e.input[0] != n.input[0]:
                continue
            s, tail = g.src(n.input[0], "Sub"), [n, lg, z, e]
        else:
            continue
        m = g.src(s.input[1], "ReduceMax") if s is not None else None
        axes = g.axes(z)
        if m is None or m.input[0] != s.input[0] or axes is None or g.axes(m) != axes or len(axes) != 1:
            continue
        if not g.attr(z, "keepdims", 1) or not g.attr(m, "keepdims", 1):
            continue
        inner = [m, s] + tail[1:]
        if not all(g.only_used_by(x.output[0], *inner, n) for x in inner):
            continue
        op = "Softmax" if n.op_type == "Div" else "LogSoftmax"
        name = n.name.rsplit("/", 1)[0] + f"/{op}" if "/" in n.name else f"{op}_{n.name}"
        _replace(g.em, inner + [n], helper.make_node(op, [s.input[0]], [n.output[0]], name=name, axis=axes[0]), n)
        return True
    return False


def _gemm(g: _Graph) -> bool:
    """``x @ W.T (+ b)`` with x of rank 2 and W, b initializers -> Gemm(transB=1) (linear)."""
    for mm in list(g.em.nodes):
        if mm.op_type != "MatMul":
            continue
        t = g.src(mm.input[1], "Transpose")
        w = g.const(t.input[0]) if t is not None else None
        if t is None or g.attr(t, "perm") != [1, 0] or w is None or len(g.em.shape.get(mm.input[0], ())) != 2:
            continue
        if not g.only_used_by(t.output[0], mm):
            continue
        inputs, last, remove = [mm.input[0], t.input[0]], mm, [t, mm]
        users = g.users.get(mm.output[0], [])
        if len(users) == 1 and users[0].op_type == "Add" and users[0].input[0] == mm.output[0]:
            b = g.const(users[0].input[1])
            if b is not None and b.shape == (w.shape[0],):
                inputs.append(users[0].input[1])
                last = users[0]
                remove.append(last)
        _replace(g.em, remove, helper.make_node("Gemm", inputs, [last.output[0]], name=mm.name.replace("MatMul", "Gemm"), transB=1), last)
        return True
    return False


def _gelu(g: _Graph) -> bool:
    """``x * 0.5 * (erf(x / sqrt(2)) + 1)`` -> Gelu."""
    for n in list(g.em.nodes):
        if n.op_type != "Mul":
            continue
        for h_name, a_name in ((n.input[0], n.input[1]), (n.input[1], n.input[0])):
            h, a = g.src(h_name, "Mul"), g.src(a_name, "Add")
            if h is None or a is None or g.scalar(h.input[1]) != 0.5 or g.scalar(a.input[1]) != 1.0:
                continue
            erf = g.src(a.input[0], "Erf")
            k = g.src(erf.input[0], "Mul") if erf is not None else None
            c = g.scalar(k.input[1]) if k is not None else None
            if k is None or c is None or not math.isclose(c, 1 / math.sqrt(2), rel_tol=1e-6) or k.input[0] != h.input[0]:
                continue
            inner = [h, a, erf, k]
            if not all(g.only_used_by(x.output[0], *inner, n) for x in inner):
                continue
            _replace(g.em, inner + [n], helper.make_node("Gelu", [h.input[0]], [n.output[0]], name=n.name.replace("Mul", "Gelu")), n)
            return True
    return False


def _mean(g: _Graph) -> bool:
    """``sum(x, axes) * (1 / count)`` -> ReduceMean (mean), so the count follows the input's size."""
    for n in list(g.em.nodes):
        if n.op_type != "Mul":
            continue
        r = g.src(n.input[0], "ReduceSum")
        c = g.scalar(n.input[1])
        shape = g.em.shape.get(r.input[0]) if r is not None else None
        if r is None or c is None or shape is None or not g.only_used_by(r.output[0], n):
            continue
        axes = g.axes(r)
        count = int(np.prod(shape)) if axes is None else int(np.prod([shape[a] for a in axes]))
        if count == 0 or not math.isclose(c, 1.0 / count, rel_tol=1e-6):
            continue
        attrs = {"keepdims": g.attr(r, "keepdims", 1)}
        _replace(g.em, [r, n], helper.make_node("ReduceMean", list(r.input), [n.output[0]], name=r.name.replace("ReduceSum", "ReduceMean"),
                                                **attrs), n)
        return True
    return False


def run(em: Any, opset: int) -> None:
    """Apply the fusions until none matches (Gelu only where the opset has it)."""
    rules = (_softmax_family, _gemm, _mean, _gelu) if opset >= 20 else (_softmax_family, _gemm, _mean)
    for rule in rules:
        while rule(_Graph(em)):
            pass


def prune(em: Any, outputs: list[str]) -> None:
    """Drop nodes and initializers that no graph output depends on; an output produced by an
    Identity of an inner value takes that value's name's place (the node is renamed instead)."""
    producer = {o: n for n in em.nodes for o in n.output}
    for out in outputs:
        ident = producer.get(out)
        if ident is None or ident.op_type != "Identity":
            continue
        src = producer.get(ident.input[0])
        uses = sum(i == ident.input[0] for n in em.nodes for i in n.input)
        if src is not None and uses == 1 and ident.input[0] not in outputs:
            k = list(src.output).index(ident.input[0])
            src.output[k] = out
            em.nodes.remove(ident)
            producer[out] = src
    need = set(outputs)
    keep = []
    for n in reversed(em.nodes):
        if any(o in need for o in n.output):
            keep.append(n)
            need.update(i for i in n.input if i)
    em.nodes[:] = keep[::-1]
    for k in [k for k in em.inits if k not in need]:
        del em.inits[k]
