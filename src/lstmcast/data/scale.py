"""Per-column scaling fitted on the training rows, stored with the model as plain JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstmcast import choices
from lstmcast.checks import check_choice
from lstmcast.errors import ConfigError, DataError, ModelFileError

KINDS = choices.values(choices.ScalerKind)
# A column that is flat on the fitting rows gets scale 1 (it is only centred): dividing by a
# spread of ~0 would turn float noise into huge values.
_MIN_SCALE = 1e-12


@dataclass(frozen=True, eq=False)
class Scaler:
    """`(a - center) / scale` per column. `center` and `scale` are float64 (F,) arrays,
    `scale` is finite and > 0. Arrays narrower than F use the first columns (the targets).
    """

    kind: str
    center: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, KINDS, quote=True)
        center = np.asarray(self.center, dtype=np.float64)
        scale = np.asarray(self.scale, dtype=np.float64)
        if center.ndim != 1 or center.shape != scale.shape:
            raise ConfigError(
                f"center and scale must be 1-D arrays of the same length; "
                f"got shapes {center.shape} and {scale.shape}"
            )
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ConfigError("center must be finite and scale finite and > 0 in every column")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", scale)

    @property
    def n_features(self) -> int:
        """Number of columns the scaler was fitted on."""
        return int(self.center.shape[0])

    def _params(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        width = a.shape[-1] if a.ndim else 0
        if a.ndim == 0 or width > self.n_features:
            raise DataError(
                f"cannot scale an array of shape {a.shape}: its last axis must have at most "
                f"{self.n_features} columns (the scaler's)"
            )
        # Match a float32 input's dtype so the result stays float32 (and half the memory).
        dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float64)
        return self.center[:width].astype(dtype), self.scale[:width].astype(dtype)

    def transform(self, a: np.ndarray) -> np.ndarray:
        """Scale `a` (..., F') column-wise, F' <= F; returns a new array."""
        a = np.asarray(a)
        center, scale = self._params(a)
        return (a - center) / scale

    def inverse(self, a: np.ndarray) -> np.ndarray:
        """Undo `transform`: `a * scale + center` on the last axis."""
        a = np.asarray(a)
        center, scale = self._params(a)
        return a * scale + center

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: {'kind': str, 'center': [float], 'scale': [float]}."""
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: object) -> Scaler:
        """Rebuild a scaler from `to_dict()` output; ModelFileError if it is malformed."""
        if not isinstance(data, Mapping):
            raise ModelFileError(f"scaler: expected a JSON object, got {type(data).__name__}")
        missing = [key for key in ("kind", "center", "scale") if key not in data]
        if missing:
            raise ModelFileError(f"scaler: missing key(s) {', '.join(missing)}")
        kind = data["kind"]
        if kind not in KINDS:
            raise ModelFileError(f"scaler: unknown kind {kind!r}; allowed: {', '.join(KINDS)}")
        arrays = {}
        for key in ("center", "scale"):
            value = data[key]
            ok = isinstance(value, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            )
            if not ok:
                raise ModelFileError(
                    f"scaler: '{key}' must be a list of numbers; got {value!r:.80}"
                )
            arrays[key] = np.asarray(value, dtype=np.float64)
        center, scale = arrays["center"], arrays["scale"]
        if len(center) != len(scale) or len(center) == 0:
            raise ModelFileError(
                f"scaler: 'center' has {len(center)} entries and 'scale' {len(scale)}; "
                f"they must match and be non-empty"
            )
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ModelFileError("scaler: 'center' must be finite and 'scale' finite and > 0")
        return cls(kind=str(kind), center=center, scale=scale)


def fit_scaler(values: np.ndarray, kind: str = "standard") -> Scaler:
    """Fit a scaler on `values` (rows, F) - pass the training rows only.

    standard: mean and population std (ddof=0); minmax: min and max - min; robust: median and
    interquartile range (std where the IQR is 0); none: 0 and 1.
    """
    check_choice("kind", kind, KINDS, quote=True)
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(
            f"fit_scaler needs a non-empty 2-D array (rows, features); got shape {a.shape}"
        )
    if not np.isfinite(a).all():
        row, col = np.argwhere(~np.isfinite(a))[0]
        raise DataError(
            f"fit_scaler got a non-finite value {a[row, col]} at array index [{row}, {col}]"
        )

    if kind == "standard":
        center, scale = a.mean(axis=0), a.std(axis=0)
    elif kind == "minmax":
        center, scale = a.min(axis=0), a.max(axis=0) - a.min(axis=0)
    elif kind == "robust":
        q25, center, q75 = np.percentile(a, [25, 50, 75], axis=0)
        scale = np.where(q75 - q25 > _MIN_SCALE, q75 - q25, a.std(axis=0))
    else:
        center, scale = np.zeros(a.shape[1]), np.ones(a.shape[1])
    scale = np.where(scale > _MIN_SCALE, scale, 1.0)
    return Scaler(kind=kind, center=center, scale=scale)
