"""Gradient checking, a tool on top of the autograd engine: :func:`gradcheck`,
:func:`gradgradcheck` and :func:`check_graph`, and the reports they return.

The engine (:mod:`tinygrad_cnn.autograd`) does not import this package; the checker reads
recorded graphs through the public :class:`~tinygrad_cnn.autograd.Node` API and
:func:`tinygrad_cnn.autograd.graph.walk`. Hypothesis strategies for property tests are in
:mod:`tinygrad_cnn.testing` (they need the ``hypothesis`` dev extra, so this package does not
import them).

Example::

    import numpy as np
    import tinygrad_cnn as tg
    x = tg.randn(3, dtype=np.float64, requires_grad=True)
    tg.check.gradcheck(lambda x: (x * x.tanh()).sum(), (x,))       # True
"""
from .gradcheck import gradcheck, gradgradcheck
from .graph_check import GraphCheckResult, NodeCheck, check_graph
from .report import ElementError, GradcheckError, GradcheckResult, GradcheckWarning, Kink, PairReport, Problem

__all__ = [
    "ElementError",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "GraphCheckResult",
    "Kink",
    "NodeCheck",
    "PairReport",
    "Problem",
    "check_graph",
    "gradcheck",
    "gradgradcheck",
]
