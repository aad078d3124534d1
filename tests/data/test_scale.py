import json

import numpy as np
import pytest

from lstmcast.data import Scaler, fit_scaler
from lstmcast.errors import ConfigError, DataError, ModelFileError

RNG = np.random.default_rng(0)
VALUES = (RNG.normal(size=(50, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -3.0]).astype(np.float32)


@pytest.mark.parametrize("kind", ["standard", "minmax", "robust", "none"])
def test_inverse_undoes_transform(kind: str) -> None:
    scaler = fit_scaler(VALUES, kind)
    scaled = scaler.transform(VALUES)
    assert scaled.dtype == np.float32 and scaled.shape == VALUES.shape
    np.testing.assert_allclose(scaler.inverse(scaled), VALUES, rtol=1e-5, atol=1e-5)


def test_standard_uses_population_std() -> None:
    scaler = fit_scaler(VALUES, "standard")
    np.testing.assert_allclose(scaler.center, VALUES.astype(np.float64).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(scaler.scale, VALUES.astype(np.float64).std(axis=0, ddof=0))
    scaled = scaler.transform(VALUES)
    np.testing.assert_allclose(scaled.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.std(axis=0), 1, atol=1e-5)


def test_minmax_and_robust_statistics() -> None:
    minmax = fit_scaler(VALUES, "minmax").transform(VALUES)
    np.testing.assert_allclose(minmax.min(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(minmax.max(axis=0), 1, atol=1e-6)
    robust = fit_scaler(VALUES, "robust")
    np.testing.assert_allclose(robust.center, np.median(VALUES, axis=0), rtol=1e-6)
    # a column whose IQR is 0 falls back to its std
    spiky = np.zeros((20, 1))
    spiky[0, 0] = 10.0
    assert fit_scaler(spiky, "robust").scale[0] == pytest.approx(np.std(spiky))


def test_fitted_on_given_rows_only() -> None:
    train = VALUES[:30]
    before = fit_scaler(train)
    changed = VALUES.copy()
    changed[30:] += 1000.0  # wild test rows must not leak into the statistics
    after = fit_scaler(changed[:30])
    np.testing.assert_array_equal(before.center, after.center)
    np.testing.assert_array_equal(before.scale, after.scale)


def test_narrow_arrays_use_the_first_columns() -> None:
    scaler = fit_scaler(VALUES)
    predictions = VALUES[:, :2].reshape(5, 10, 2)  # (N, H, n_targets)
    np.testing.assert_allclose(
        scaler.transform(predictions).reshape(50, 2), scaler.transform(VALUES)[:, :2], rtol=1e-6
    )
    with pytest.raises(DataError, match=r"at most 3 columns"):
        scaler.transform(np.zeros((2, 4)))


def test_constant_column_gets_unit_scale() -> None:
    values = np.column_stack([np.full(10, 4.0), np.arange(10.0)])
    scaler = fit_scaler(values)
    assert scaler.scale[0] == 1.0
    assert np.isfinite(scaler.transform(values)).all()


def test_dict_round_trip_is_json_safe() -> None:
    scaler = fit_scaler(VALUES, "robust")
    restored = Scaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert restored.kind == "robust"
    np.testing.assert_array_equal(restored.center, scaler.center)
    np.testing.assert_array_equal(restored.scale, scaler.scale)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], r"expected a JSON object, got list"),
        ({"kind": "standard", "center": [0.0]}, r"missing key\(s\) scale"),
        ({"kind": "zscore", "center": [0.0], "scale": [1.0]}, r"unknown kind 'zscore'"),
        ({"kind": "standard", "center": ["a"], "scale": [1.0]}, r"'center' must be a list"),
        ({"kind": "standard", "center": [0.0], "scale": [1.0, 2.0]}, r"'center' has 1 entries"),
        ({"kind": "standard", "center": [0.0], "scale": [0.0]}, r"'scale' finite and > 0"),
    ],
)
def test_from_dict_rejects_malformed(data: object, message: str) -> None:
    with pytest.raises(ModelFileError, match=message):
        Scaler.from_dict(data)


def test_bad_kind_and_values() -> None:
    with pytest.raises(ConfigError, match=r"'kind' parameter must be one of .*Got 'zscore'"):
        fit_scaler(VALUES, "zscore")
    with pytest.raises(DataError, match=r"non-empty 2-D array"):
        fit_scaler(np.zeros((0, 3)))
    with pytest.raises(DataError, match=r"non-finite value nan at array index \[1, 0\]"):
        fit_scaler(np.array([[1.0], [np.nan]]))
