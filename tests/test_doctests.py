"""The >>> examples in docstrings run (so they never rot)."""
import doctest

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import kernels, per_sample
from tinygrad_cnn.kernels import geometry, im2col, parallel, settings
from tinygrad_cnn.nn.functional import activation, affine, loss, normalization, padding, regularization, sampling, validation
from tinygrad_cnn.ops import functions
from tinygrad_cnn.viz import figures

FUNCTIONAL = [activation, affine, loss, normalization, padding, regularization, sampling, validation]
MODULES = [functions, *FUNCTIONAL, kernels, parallel, geometry, im2col, settings, per_sample, figures]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    globs = {name: getattr(tinygrad_cnn, name) for name in tinygrad_cnn.__all__}
    globs.update({k: v for k, v in vars(module).items() if not k.startswith("_")}, np=np)
    result = doctest.testmod(module, extraglobs=globs, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, "no examples found"
    assert result.failed == 0
