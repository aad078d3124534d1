"""The validators of options and parameters, one of each kind. Every message is one line:
"The 'name' parameter must be ... Got <value> instead." (`ConfigError`)."""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterable

from lstmcast.errors import ConfigError


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """`value` as an int if it is an integer (NumPy's included, bool not) >= `minimum`."""
    # bool is an int subclass, but `lookback=True` is always a mistake.
    number = None
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            number = operator.index(value)  # type: ignore[arg-type]
    if number is None or number < minimum:
        raise ConfigError(
            f"The '{name}' parameter must be an int >= {minimum}. Got {value!r} instead."
        )
    return number


def check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"The '{name}' parameter must be a bool. Got {value!r} instead.")


def check_choice(name: str, value: object, choices: Iterable[str], *, quote: bool = False) -> None:
    """ConfigError unless `value` is one of `choices` (listed in the given order, as reprs
    with `quote`)."""
    choices = tuple(choices)
    if value not in choices:
        listed = ", ".join(map(repr, choices) if quote else choices)
        raise ConfigError(f"The '{name}' parameter must be one of {listed}. Got {value!r} instead.")
