"""Data that is not numbers gets one clear TypeError naming what was given, never numpy's own
wording from deep inside, and never a silent NaN (numpy turns None into NaN in a float array)."""
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn.functional as F


@pytest.mark.parametrize(
    "make, shown",
    [
        (lambda: tg.ones(2) * None, "NoneType None"),
        (lambda: tg.ones(2) + "a", "str 'a'"),
        (lambda: tg.Tensor([[1.0, 2.0], [3.0]]), "[[1.0, 2.0], [3.0]]"),
        (lambda: tg.tensor([[1, 2], [3]]), "[[1, 2], [3]]"),
        (lambda: tg.tensor("abc"), "str"),
        (lambda: F.linear(tg.ones(2, 3), "abc"), "str 'abc'"),
    ],
)
def test_data_that_is_not_numbers_is_refused_by_name(make, shown):
    with pytest.raises(TypeError) as e:
        make()
    assert shown in str(e.value)


def test_linear_names_the_shapes_of_a_weight_that_is_not_2d():
    with pytest.raises(ValueError, match=r"linear: .*2-D weight.*\(2, 3\) and \(3,\)"):
        F.linear(tg.ones(2, 3), tg.ones(3))
