"""Generators of small, often malformed tables (CSV bytes) for the property-based tests of the
data boundary and of the command line."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

ODD = ["\x00", "\u2028", "\x85", "\ufeff", "é", "日本", "\U0001f600", "\t", '"', "\r", "\n"]
DATES = [f"2020-01-{d:02d}" for d in range(1, 10)] + ["2020 Q1", "2020-Q2", "2020-W05"]
DATES += ["2020-13-01", "2020-W54", "1500-01-01", "2020-01-01 10:00+01:00", "20200103", "1e5"]
NAMES = {  # by column kind; row-number names among the numbers, time names on other kinds too
    "number": ["y", "x", "a b", "y", "x", "", "rownames", "Unnamed: 0", "index", "date"],
    "date": ["date", "time", "ds", "when", ""],
    "id": ["id", "ticker", "id", "ticker", "time"],
    "text": ["site", "note", "site", "note", "", "ds"],
}
FORMATS = ["int", "float", "grouped", "percent", "comma", "special"]


def _number(draw: Callable[..., Any], style: str) -> str:
    if style == "int":
        return str(draw(st.integers(-(10**7), 10**7)))
    if style == "float":
        return repr(draw(st.floats(-1e6, 1e6)))
    if style == "grouped":
        return f"{draw(st.integers(-(10**9), 10**9)):,}"
    if style == "percent":
        return f"{draw(st.floats(-200, 200)):.1f}%"
    if style == "comma":
        return f"{draw(st.integers(-99, 99))},{draw(st.integers(0, 99))}"
    return draw(
        st.sampled_from(["inf", "-inf", "nan", "1e400", "-0", "1e-320", "NA", " ", "1e38"])
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
    )


def _junk(draw: Callable[..., Any]) -> str:
    kind = draw(st.sampled_from(["number", "date", "text", "empty", "odd"]))
    if kind == "number":
        return _number(draw, draw(st.sampled_from(FORMATS)))
    if kind == "date":
        return draw(st.sampled_from(DATES))
    if kind == "empty":
        return ""
    if kind == "odd":
        return draw(st.sampled_from(ODD)) + draw(st.sampled_from(["1", "x", ""]))
    return draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=6))


@st.composite
def columns(draw: Callable[..., Any], n_rows: int, kind: str | None = None) -> list[str]:
    """A header cell and `n_rows` cells of one kind: numbers in one style, dates (repeated
    and unsorted now and then), ids or text; a dirty column has junk in some cells."""
    kind = kind or draw(st.sampled_from(["number"] * 4 + ["date", "id", "text"]))
    name = draw(st.sampled_from(NAMES[kind]))
    if draw(st.integers(0, 9)) == 0:
        name = _junk(draw)  # odd unicode, a quoted line break, a number, a date
    style = draw(st.sampled_from(FORMATS[:5] if draw(st.booleans()) else FORMATS))
    start = draw(st.integers(1, 5))
    dirty = draw(st.integers(0, 3)) == 0
    cells = []
    for row in range(n_rows):
        if dirty and draw(st.integers(0, 5)) == 0:
            cells.append(_junk(draw))
        elif kind == "number":
            cells.append(_number(draw, style))
        elif kind == "date":
            day = start + row if draw(st.integers(0, 15)) else draw(st.integers(1, 28))
            cells.append(f"2020-02-{min(day, 28):02d}")
        elif kind == "id":
            cells.append(draw(st.sampled_from(["A", "B", "1"])))
        else:
            cells.append(draw(st.text(alphabet="abc xyz", max_size=4)))
    return [name, *cells]


@st.composite
def tables(draw: Callable[..., Any]) -> tuple[bytes, str]:
    """(file bytes, file suffix) of a small, often malformed table."""
    n_rows = draw(st.integers(0, 12) | st.integers(4, 12))
    cols = draw(st.lists(columns(n_rows), min_size=1, max_size=4))
    if draw(st.booleans()):
        cols.insert(0, draw(columns(n_rows, "date")))
    rows = [list(row) for row in zip(*cols, strict=True)]
    sep = draw(st.sampled_from([",", ",", ",", ";", "\t", "|", " "]))
    quote = draw(st.integers(0, 4)) > 0
    if draw(st.integers(0, 4)) == 0 and n_rows > 1:  # shuffled rows: unsorted timestamps
        rows = rows[:1] + draw(st.permutations(rows[1:]))
    if n_rows and draw(st.integers(0, 5)) == 0:  # ragged: a row with a cell too many or few
        victim = draw(st.integers(1, n_rows))
        rows[victim] = rows[victim] + ["7"] if draw(st.booleans()) else rows[victim][:-1]

    def field(text: str) -> str:
        needs = any(char in text for char in (sep, '"', "\n", "\r"))
        return '"' + text.replace('"', '""') + '"' if quote and needs else text

    text = "\n".join(sep.join(field(cell) for cell in row) for row in rows) + "\n"
    content = text.encode("utf-8", errors="surrogatepass")
    suffix = draw(st.sampled_from([".csv", ".csv", ".txt", ".csv.gz"]))
    if suffix == ".csv.gz":
        content = gzip.compress(content)
    return content, suffix
