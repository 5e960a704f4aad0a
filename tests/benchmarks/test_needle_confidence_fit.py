"""The confidence fit's statistics, on samples whose answer is known: the sign-held logistic
regression, the accept level and the equal weighting of conditions."""

import numpy as np
import pytest

from benchmarks.needle_confidence_fit import SIGNS, _group_weights, accept_level, fit
from fluoro.imaging.needle_evidence import FEATURES


def _samples(n, seed):
    """Features drawn at random; on a needle with a logistic probability in the contrast
    (positive weight) and the residual (negative weight) alone."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, (n, len(FEATURES)))
    x[:, 0] = 1.0
    z = -1.0 + 6.0 * x[:, FEATURES.index("contrast")] - 4.0 * x[:, FEATURES.index("residual_px")]
    y = (rng.uniform(size=n) < 1.0 / (1.0 + np.exp(-z))).astype(float)
    return x, y


def test_the_fit_recovers_known_weights_and_holds_each_to_its_sign():
    x, y = _samples(20000, 1)
    coef = fit(x, y, np.ones(y.size))
    assert coef[FEATURES.index("contrast")] == pytest.approx(6.0, rel=0.15)
    assert coef[FEATURES.index("residual_px")] == pytest.approx(-4.0, rel=0.15)
    for name, value in zip(FEATURES, coef, strict=True):
        if SIGNS[name] is not None and value != 0.0:
            assert np.sign(value) == SIGNS[name], name
    # a feature whose physics says "more is more needle-like" but which the data ties the
    # other way is held at zero, not fitted negative
    x2 = x.copy()
    x2[:, FEATURES.index("support")] = 1.0 - x[:, FEATURES.index("contrast")]
    assert fit(x2, y, np.ones(y.size))[FEATURES.index("support")] == 0.0


def test_the_accept_level_is_the_lowest_at_which_99_percent_of_reports_are_right():
    p = np.linspace(0.0, 1.0, 1001)
    y = (p >= 0.7).astype(float)
    y[[750, 800]] = 0.0  # two wrong among the confident ones: 0.993 right above 0.7
    level = accept_level(p, y)
    above = p >= level
    assert y[above].mean() >= 0.99 and level == pytest.approx(0.7, abs=0.002)
    assert accept_level(p, np.zeros_like(p)) == 1.0  # nothing is ever right: report nothing


def test_each_condition_weighs_as_much_as_another():
    groups = np.array(["a"] * 90 + ["b"] * 10)
    weight = _group_weights(groups)
    assert weight[groups == "a"].sum() == pytest.approx(weight[groups == "b"].sum())
    assert weight.sum() == pytest.approx(groups.size)
