"""Stage 3 of drawing a graph: place tensors in their modules and fold repeated structure.

Each function rewrites a :class:`~tinygrad_cnn.viz.elements.Picture` in place: parameters move
into their module's cluster, modules deeper than ``depth`` become single elements, and runs of
identical consecutive blocks become one block drawn with a count.
"""
from __future__ import annotations

from typing import Any

from .elements import Edge, Elem, Picture, shape_text
from .walk import Names

__all__ = ["fold_depth", "fold_repeated_blocks", "place_tensors"]


def place_tensors(b: Picture) -> None:
    """Parameters go in their module's cluster; other tensors next to their only neighbour.

    Example::

        place_tensors(p)        # model.conv1.weight is now drawn inside conv1's cluster
    """
    tensors = {k for k, e in b.elems.items() if e.kind != "op" and k[0] != "out"}
    if not tensors:
        return
    neighbours: dict[Any, set] = {}
    for ed in b.edges:
        if ed.src in tensors:
            neighbours.setdefault(ed.src, set()).add(ed.dst)
        if ed.dst in tensors:
            neighbours.setdefault(ed.dst, set()).add(ed.src)
    for e in b.elems.values():
        if e.kind == "op" or e.key[0] == "out":
            continue
        owner = e.owner
        if e.kind == "param" and owner is not None:
            scopes = [b.elems[k].scope for k in neighbours.get(e.key, ()) if k in b.elems and b.elems[k].kind == "op"]
            for s in scopes:
                for d, c in enumerate(s):
                    if c.module is owner:
                        e.scope = s[: d + 1]
                        break
                if e.scope:
                    break
        elif e.kind != "tensor" and not e.named:  # named inputs (the model's input) stay outside
            ns = [b.elems[k] for k in neighbours.get(e.key, ()) if k in b.elems]
            if len(ns) == 1 and ns[0].kind == "op":
                # into the module, not into a function call: folding the call must not hide its input
                sc = ns[0].scope
                e.scope = next((sc[:d] for d, c in enumerate(sc) if c.is_function), sc)


def fold_depth(b: Picture, depth: int, names: Names) -> None:
    """Replace every module call nested deeper than ``depth`` by one ``module`` element that
    shows its input and output shapes (the outermost module is depth 0). Function scopes
    (``linear``, ``cross_entropy``) count as levels too, and fold the same way.

    Example::

        fold_depth(p, 1, names)     # each of the model's layers becomes one box
    """
    remap: dict[Any, Any] = {}
    groups: dict[Any, Elem] = {}
    for e in list(b.elems.values()):
        if len(e.scope) <= depth or e.key[0] == "out":
            continue
        c = e.scope[depth]
        gk = ("m", id(c))
        g = groups.get(gk)
        if g is None:
            path, cls, npar = names.module_label(c.module)
            g = Elem(gk, "module", e.scope[:depth], e.order, path or cls)
            g.module = c.module
            g.call = c
            g.cls = cls
            g.npar = npar
            groups[gk] = g
        g.order = min(g.order, e.order)
        g.objs |= e.objs
        g.bad |= e.bad
        g.highlighted |= e.highlighted
        g.members.append(e)
        remap[e.key] = gk
        del b.elems[e.key]
    if not groups:
        return
    b.elems.update(groups)
    ins: dict[Any, list] = {k: [] for k in groups}
    outs: dict[Any, list] = {k: [] for k in groups}
    new_edges: list[Edge] = []
    seen: set = set()
    for ed in b.edges:
        s, d = remap.get(ed.src, ed.src), remap.get(ed.dst, ed.dst)
        if s == d:
            continue
        # The tensor an edge carries: its producer's output (the edge's tail in the forward view,
        # its head in the backward view); a tensor used twice counts once.
        tensor = (ed.src, ed.label) if b.view == "forward" else (ed.dst, ed.label)
        if d in groups and ed.shape is not None and tensor not in [x[0] for x in ins[d]]:
            ins[d].append((tensor, ed.shape))
        if s in groups and ed.shape is not None and tensor not in [x[0] for x in outs[s]]:
            outs[s].append((tensor, ed.shape))
        if (s, d, ed.label if s not in groups else "") in seen:
            continue
        seen.add((s, d, ed.label if s not in groups else ""))
        new_edges.append(Edge(s, d, ed.label if s not in groups else "", ed.shape))
    b.edges = new_edges
    fwd = b.view == "forward"
    for gk, g in groups.items():
        i_sh = ", ".join(shape_text(s) for _, s in ins[gk]) or "-"
        o_sh = ", ".join(shape_text(s) for _, s in outs[gk]) or "-"
        if not fwd:  # gradients flow the other way
            i_sh, o_sh = o_sh, i_sh
        if g.call.is_function:  # the title is the function's name already
            g.attrs = ""
        else:
            g.attrs = f"{g.cls}  {g.npar:,} params" if g.npar else g.cls
        g.lines.insert(0, (f"in {i_sh}  \u2192  out {o_sh}", None))
        ops = [m for m in g.members if m.kind == "op"]
        if len(ops) == 1 and ops[0].attrs:  # a one-op layer: its attributes (conv stride, pool kernel) say what it does
            g.lines.append((ops[0].attrs, "#444444"))
        g.lines.append((f"{len(ops)} op{'s' if len(ops) != 1 else ''} folded", "#666666"))
        member_sigs = tuple(m.sig for m in sorted(g.members, key=lambda m: m.order))
        g.sig = ("module", g.cls, member_sigs)


def _module_members(b: Picture) -> dict[int, list[Elem]]:
    """id(module call) -> elements drawn inside it (at any depth)."""
    out: dict[int, list[Elem]] = {}
    for e in b.elems.values():
        for c in e.scope:
            out.setdefault(id(c), []).append(e)
        if e.kind == "module":
            out.setdefault(id(e.call), []).append(e)
    return out


def fold_repeated_blocks(b: Picture, names: Names) -> None:
    """Fold runs of >= 2 identical consecutive sibling modules connected as a chain into one.

    The first block of a run stays, drawn with the run's length; the run is recorded in
    ``b.repeats`` so its cluster is labelled ``first .. last xN``.

    Example::

        fold_repeated_blocks(p, names)   # blocks.0 .. blocks.5 become one block x6
    """
    if not any(e.scope or e.kind == "module" for e in b.elems.values()):
        return
    members = _module_members(b)
    mods: dict[int, Any] = {}
    parent: dict[int, Any] = {}
    for e in b.elems.values():
        chain = list(e.scope) + ([e.call] if e.kind == "module" else [])
        for d, m in enumerate(chain):
            mods[id(m)] = m
            parent.setdefault(id(m), id(chain[d - 1]) if d else None)
    siblings: dict[Any, list[int]] = {}
    for mid, pid in parent.items():
        siblings.setdefault(pid, []).append(mid)
    in_edges: dict[Any, list[Edge]] = {}
    out_edges: dict[Any, list[Edge]] = {}
    for ed in b.edges:
        out_edges.setdefault(ed.src, []).append(ed)
        in_edges.setdefault(ed.dst, []).append(ed)

    def sig(mid: int) -> tuple:
        els = sorted(members[mid], key=lambda e: e.order)
        return (type(mods[mid].module).__name__, tuple(e.sig for e in els))

    def feeds_only(a: int, c: int) -> bool:
        ka = {e.key for e in members[a]}
        kc = {e.key for e in members[c]}
        outside_a = [ed for k in ka for ed in out_edges.get(k, ()) if ed.dst not in ka]
        into_c = [ed for k in kc for ed in in_edges.get(k, ()) if ed.src not in kc]
        return bool(outside_a) and all(ed.dst in kc for ed in outside_a) and all(ed.src in ka for ed in into_c)

    for _pid, kids in siblings.items():
        # Function calls are not folded into runs: each is one call on its own, named by the function.
        kids = [k for k in kids if members.get(k) and not mods[k].is_function]
        kids.sort(key=lambda k: min(e.order for e in members[k]))
        i = 0
        while i < len(kids):
            j = i
            s0 = sig(kids[i])
            while j + 1 < len(kids) and sig(kids[j + 1]) == s0 and (
                feeds_only(kids[j], kids[j + 1]) if b.view == "forward" else feeds_only(kids[j + 1], kids[j])
            ):
                j += 1
            if j > i:
                _fold_run(b, [kids[x] for x in range(i, j + 1)], members, mods, names)
            i = j + 1


def _fold_run(b: Picture, run: list[int], members: dict, mods: dict, names: Names) -> None:
    first = sorted(members[run[0]], key=lambda e: e.order)
    last = sorted(members[run[-1]], key=lambda e: e.order)
    first_keys = [e.key for e in first]
    to_first = {e.key: first_keys[i] for i, e in enumerate(last)}
    drop = {e.key for mid in run[1:] for e in members[mid]}
    inner = drop | set(first_keys)
    new_edges = []
    for ed in b.edges:
        if ed.src in drop and ed.dst not in inner:
            ed = Edge(to_first[ed.src], ed.dst, ed.label, ed.shape)
        elif ed.dst in drop and ed.src not in inner:
            ed = Edge(ed.src, to_first[ed.dst], ed.label, ed.shape)
        elif ed.src in drop or ed.dst in drop:
            continue
        elif ed.src in first_keys and ed.dst not in inner and b.view == "forward":
            continue  # the first block's own output now leaves from the run's end (same element)
        elif ed.dst in first_keys and ed.src not in inner and b.view == "backward":
            continue
        new_edges.append(ed)
    b.edges = new_edges
    for mid in run[1:]:
        for e in members[mid]:
            first_el = b.elems[to_first.get(e.key, e.key)] if e.key in to_first else None
            if first_el is not None:
                first_el.objs |= e.objs
                first_el.bad |= e.bad
                first_el.highlighted |= e.highlighted
            b.elems.pop(e.key, None)
    p0 = names.module_label(mods[run[0]].module)[0]
    p1 = names.module_label(mods[run[-1]].module)[0]
    b.repeats[run[0]] = (len(run), p0, p1)
    for e in first:
        if e.kind == "module" and e.call is mods[run[0]]:
            e.count = len(run)
