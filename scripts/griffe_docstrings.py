"""A Griffe extension for the API reference (mkdocs.yml loads it): the package's docstrings are
reStructuredText-flavoured prose, which Markdown would misread. Before mkdocstrings renders a
docstring this turns

- doctest runs (``>>>`` lines and their output) into fenced ``pycon`` blocks, so ``[1.0, 2.0]``
  in an output is not taken for a link;
- an ``Example::`` paragraph with its indented block into ``Example:`` and a fenced python block;
- roles such as ``:func:`~tinygrad_cnn.func.grad``` into inline code (``grad``).

Where reading the source alone cannot see a docstring, it looks at the imported package:

- a function or class whose docstring is set at run time (``__doc__ = ...``, or built by a
  factory such as ``sgd = _constructor(...)``) gets it, with the run-time signature;
- a module-level second name for a function or class (``concat = cat``) is documented as such;
- a class whose constructor is built at run time (the optimizers' ``__init__``, made from their
  update rule's signature) shows that constructor's signature;
- a method that overrides a documented one of a base class without a docstring of its own
  (each layer's ``forward``) is left out: the base class documents it.

It also leaves out the attributes of a class that have no docstring of their own (instance
fields such as ``DataLoader.batch_size``): the class docstring describes them, and a list of
bare names would only repeat the signature. Module-level constants are kept, so the reference
test requires a docstring for each.
"""
from __future__ import annotations

import importlib
import inspect
import pathlib
import re
import sys
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")


def _role(m: re.Match) -> str:
    target = m.group(2)
    return f"`{target.rsplit('.', 1)[-1] if m.group(1) else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def convert(text: str) -> str:
    """The docstring ``text`` with its doctest runs, ``::`` literal blocks and roles in Markdown."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">>>"):
            pad = " " * _indent(line)
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][len(pad):] if lines[i].startswith(pad) else lines[i].strip())
                i += 1
            out += [f"{pad}```pycon", *(pad + b for b in block), f"{pad}```"]
            continue
        if stripped.endswith("::") and not stripped.startswith(".."):
            # An rst literal block: the following lines indented deeper than this one.
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            base = _indent(line)
            k = j
            while k < len(lines) and (not lines[k].strip() or _indent(lines[k]) > base):
                k += 1
            while k > j and not lines[k - 1].strip():
                k -= 1
            if k > j:
                head = line.rstrip()[:-2].rstrip()
                if head:
                    out.append(_ROLE.sub(_role, head) + ":")
                pad = " " * base
                body = textwrap.dedent("\n".join(lines[j:k])).splitlines()
                out += ["", f"{pad}```python", *(pad + b if b else "" for b in body), f"{pad}```", ""]
                i = k
                continue
        out.append(_ROLE.sub(_role, line))
        i += 1
    return "\n".join(out)


class RestToMarkdown(griffe.Extension):
    """Rewrites every docstring with :func:`convert` as Griffe loads it."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        for name, member in list(cls.members.items()):
            if not member.is_alias and member.is_attribute and member.docstring is None:
                cls.del_member(name)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        root = str(pathlib.Path(pkg.filepath).parent.parent) if isinstance(pkg.filepath, pathlib.Path) else None
        if root and root not in sys.path:
            sys.path.insert(0, root)
        _fill(pkg, importlib.import_module(pkg.path))


def _documented_in_base(cls: griffe.Class, name: str) -> bool:
    try:
        bases = cls.mro()
    except Exception:  # a base outside the package (or not resolvable): keep the member
        return False
    return any(name in b.members and b.members[name].docstring is not None for b in bases)


def _function_from_signature(name: str, sig: inspect.Signature) -> griffe.Function:
    """A Griffe function with the parameters of a run-time signature (annotations and defaults as text)."""

    def text(v: Any) -> str | None:
        if v is inspect.Parameter.empty:
            return None
        return v if isinstance(v, str) else inspect.formatannotation(v).replace("collections.abc.", "").replace("typing.", "")

    params = [
        griffe.Parameter(
            p.name,
            annotation=text(p.annotation),
            kind=griffe.ParameterKind(p.kind.description),
            default=None if p.default is p.empty else repr(p.default),
        )
        for p in sig.parameters.values()
    ]
    return griffe.Function(name, parameters=griffe.Parameters(*params), returns=text(sig.return_annotation))


def _fill(obj: griffe.Object, runtime: Any) -> None:
    """Complete the docstrings under ``obj`` (a module or class) from its run-time counterpart."""
    for name, member in list(obj.members.items()):
        if member.is_alias:
            continue
        if member.is_module:
            if name != "__main__":  # importing it would run the command line
                _fill(member, importlib.import_module(member.path))
            continue
        rt = getattr(runtime, name, None)
        if member.docstring is None:
            if member.is_attribute and obj.is_module and (inspect.isfunction(rt) or inspect.isclass(rt)):
                if not rt.__module__.startswith(obj.package.path + "."):
                    continue  # another package's object (DEFAULT_DTYPE = np.float32): needs a docstring here
                if rt.__name__ != name:
                    member.docstring = griffe.Docstring(f"Another name for `{rt.__name__}`.", parent=member)
                    continue
                if rt.__module__ != obj.path:  # bound at run time to an object defined elsewhere
                    continue
                member = griffe.inspect(obj.path)[name]  # built at run time: take its signature too
                if member.docstring is not None:
                    member.docstring.value = convert(member.docstring.value)
                obj.set_member(name, member)
            elif (member.is_function or member.is_class) and getattr(rt, "__doc__", None):
                member.docstring = griffe.Docstring(convert(inspect.cleandoc(rt.__doc__)), parent=member)
            elif member.is_function and obj.is_class and _documented_in_base(obj, name):
                obj.del_member(name)
                continue
        if member.is_class:
            init = vars(rt).get("__init__") if inspect.isclass(rt) else None
            if init is not None and hasattr(init, "__signature__"):
                member.set_member("__init__", _function_from_signature("__init__", inspect.signature(init)))
            _fill(member, rt)
