"""The learning-rate policies against hand-computed values."""

import math

import pytest
from zoo.train.schedule import learning_rate, poly

from zoo.errors import UserError


def test_poly_matches_hand_computed_values():
    # base 0.01, max_iter 100, power 0.5: 0.01 * sqrt(1 - it/100)
    assert poly(0, base_lr=0.01, max_iter=100) == 0.01
    assert poly(75, base_lr=0.01, max_iter=100) == pytest.approx(0.005, abs=1e-15)  # sqrt(0.25) = 0.5
    assert poly(36, base_lr=0.01, max_iter=100) == pytest.approx(0.008, abs=1e-15)  # sqrt(0.64) = 0.8
    assert poly(99, base_lr=0.01, max_iter=100) == pytest.approx(0.001, abs=1e-15)  # sqrt(0.01) = 0.1
    assert poly(100, base_lr=0.01, max_iter=100) == 0.0
    assert poly(150, base_lr=0.01, max_iter=100) == 0.0


def test_poly_other_power_is_caffe_formula():
    assert poly(50, base_lr=0.1, max_iter=200, power=2.0) == pytest.approx(0.1 * 0.75**2)
    assert poly(50, base_lr=0.1, max_iter=200, power=1.0) == pytest.approx(0.075)


def test_step_and_fixed():
    p = {"base_lr": 0.01, "gamma": 0.1, "stepsize": 10, "max_iter": 100, "power": 0.5}
    assert learning_rate("step", 9, **p) == pytest.approx(0.01)
    assert learning_rate("step", 10, **p) == pytest.approx(0.001)
    assert learning_rate("step", 25, **p) == pytest.approx(0.0001)
    assert learning_rate("fixed", 99, **p) == 0.01
    assert learning_rate("poly", 19, **p) == pytest.approx(0.01 * math.sqrt(0.81))


def test_unknown_policy_is_a_user_error():
    with pytest.raises(UserError, match="unknown"):
        learning_rate("cosine", 0, base_lr=0.1)
