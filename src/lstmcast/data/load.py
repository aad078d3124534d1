"""Read a table from CSV or Parquet (or pass a DataFrame through) with one-line errors."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from lstmcast.errors import DataError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
SEPARATORS = (",", ";", "\t", "|")  # the delimiters a CSV file is checked for, by preference
_SAMPLE_BYTES = 64 * 1024  # how much of a CSV file the delimiter check reads
_SAMPLE_RECORDS = 200
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+")
# A decimal-comma file's numbers: 12, 1,5, 1.234 or 1.234,5 (the dot groups thousands there).
_COMMA_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?")


def read_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read `source` into a DataFrame with a plain row index (see `read_table_digest`)."""
    return read_table_digest(source)[0]


def read_table_digest(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Read `source` into a DataFrame with a plain row index, and the sha256 of what was read:
    of the file's bytes (the file is read once, hashed, then parsed from memory), or of a
    DataFrame's contents and index.

    A path ending in .csv, .csv.gz or .txt is read as CSV, one ending in .parquet or .pq as
    Parquet. A CSV file's delimiter is found from its first lines (',', ';', tab or '|';
    see `csv_style`), and a ';'-separated file whose numbers use decimal commas ("1,5") is read
    as such. A file holding NUL bytes is refused (the parser would silently cut numbers at
    them). A DataFrame is copied shallowly and passed through. A DatetimeIndex becomes the
    first column, named after the index or 'time', so that `prepare` finds it like any other
    time column.
    """
    if isinstance(source, pd.DataFrame):
        frame = datetime_index_to_column(source.copy(deep=False), "the DataFrame")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise DataError(
                f"the DataFrame is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)"
            )
        return frame, frame_sha256(source)

    path = Path(source)
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist")
    if path.is_dir():
        raise DataError(f"data file '{path}' is a directory; pass a .csv or .parquet file")
    name = path.name.lower()
    allowed = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    if name.endswith(CSV_SUFFIXES):
        kind = "CSV"
    elif name.endswith(PARQUET_SUFFIXES):
        kind = "Parquet"
    else:
        raise DataError(
            f"data file '{path}' has an unsupported extension "
            f"'{''.join(path.suffixes) or '(none)'}'; allowed: {allowed}"
        )

    try:
        # One read: the digest covers every byte exactly once, and the delimiter check and
        # the parser (pyarrow seeks, footer first) both work from memory.
        content = path.read_bytes()
    except OSError as exc:
        raise DataError(f"data file '{path}' could not be read: {_one_line(exc)}") from exc
    digest = hashlib.sha256(content).hexdigest()
    failed = f"could not be read as {kind}"
    try:
        if kind == "Parquet":
            frame = pd.read_parquet(io.BytesIO(content))
        else:
            gz = name.endswith(".gz")  # decompressed here: the parser reads from memory
            text = gzip.decompress(content) if gz else content
            where = f"data file '{path}'" + (" (uncompressed)" if gz else "")
            sep, decimal = csv_style(text, where, loose=name.endswith(".txt"))
            if sep not in (None, ","):
                failed = f"looks {sep!r}-separated but could not be read that way"
            frame = _read_csv(text, sep, decimal)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file '{path}' is empty") from None
    except DataError:
        raise
    # pandas and pyarrow raise many unrelated exception types on corrupt or odd files; whatever
    # the type, the user needs the file name and the reason on one line.
    except Exception as exc:
        raise DataError(f"data file '{path}' {failed}: {_one_line(exc)}") from exc

    frame = datetime_index_to_column(frame, f"data file '{path}'")
    if frame.shape[0] == 0:
        raise DataError(f"data file '{path}' has no data rows (only a header)")
    if frame.shape[1] == 0:
        raise DataError(f"data file '{path}' has no columns")
    return frame, digest


def csv_style(content: bytes, where: str, loose: bool = False) -> tuple[str | None, str]:
    """(delimiter, decimal mark) of CSV bytes, judged from the first records.

    The delimiter is the one of `SEPARATORS` that splits the header into more than one field
    and every sampled record into as many; when none does, the one splitting the header into
    the most fields (',' when none splits it; None with `loose`, for .txt files, so that the
    parser sniffs any other delimiter). Two that both fit are refused: the file could be read
    either way. The decimal mark is ',' for a ';'-separated file with a cell like "1,5".
    DataError for NUL bytes, which are never in a text CSV.
    """
    nul = content.find(b"\x00")
    if nul >= 0:
        utf16 = " (UTF-16? save it as UTF-8)" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise DataError(f"{where} contains NUL bytes at byte {nul}; it is not a text CSV{utf16}")
    sample = content[:_SAMPLE_BYTES].decode("utf-8", errors="replace").lstrip("\ufeff")
    truncated = len(content) > _SAMPLE_BYTES
    records = {sep: _records(sample, sep, truncated) for sep in SEPARATORS}
    header = {sep: len(rows[0]) if rows else 0 for sep, rows in records.items()}
    fits = [
        sep
        for sep, rows in records.items()
        if header[sep] > 1 and all(len(row) == header[sep] for row in rows)
    ]
    if len(fits) > 1:
        line = sample.splitlines()[0] if sample else ""
        raise DataError(
            f"{where} looks both {fits[0]!r}- and {fits[1]!r}-separated (its header "
            f"{line[:60]!r} splits both ways, and so does every row); save it with one delimiter"
        )
    if fits:
        sep: str | None = fits[0]
    elif max(header.values()) <= 1:
        sep = None if loose else ","
    else:
        sep = max(SEPARATORS, key=lambda s: header[s])  # max keeps the first of a tie
    decimal = "."
    if sep == ";" and any(
        _DECIMAL_COMMA.fullmatch(cell.strip()) for row in records[";"][1:] for cell in row
    ):
        decimal = ","
    return sep, decimal


def _records(sample: str, sep: str, truncated: bool) -> list[list[str]]:
    """The first records of `sample` split at `sep` (quotes respected, blank lines skipped;
    the last record dropped when the sample may have cut it)."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=sep)
    try:
        for row in reader:
            if row:
                rows.append(row)
            if len(rows) > _SAMPLE_RECORDS:
                break
    except csv.Error:  # a malformed quote: judge by the records before it
        pass
    if truncated:
        rows = rows[:-1]
    return rows[:_SAMPLE_RECORDS]


def _read_csv(data: bytes, sep: str | None, decimal: str) -> pd.DataFrame:
    """Parse CSV bytes with the delimiter and decimal mark `csv_style` found."""
    if sep is None:  # .txt with no common delimiter: let the parser sniff one
        return pd.read_csv(io.BytesIO(data), sep=None, engine="python")
    frame = pd.read_csv(io.BytesIO(data), sep=sep, decimal=decimal)
    if decimal != ",":
        return frame
    for name in frame.columns:  # 1.234,5 is text to the parser: the dot groups thousands
        column = frame[name]
        if column.dtype == object:
            cells = column.dropna().astype(str).str.strip()
            if len(cells) and bool(cells.str.fullmatch(_COMMA_NUMBER.pattern).all()):
                text = column.astype("string").str.strip()
                text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
                numbers = pd.Series(pd.to_numeric(text), index=column.index)
                frame[name] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return frame


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a DataFrame's contents and index."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def datetime_index_to_column(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Move a DatetimeIndex into a first column (named after the index, or 'time')."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        return frame
    name = str(frame.index.name) if frame.index.name is not None else "time"
    if name in frame.columns:
        raise DataError(
            f"{where} has a DatetimeIndex named '{name}' and also a column '{name}'; rename one"
        )
    return frame.reset_index(names=name)
