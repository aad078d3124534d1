"""Read a table from CSV or Parquet (or pass a DataFrame through) with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lstmcast.errors import DataError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read `source` into a DataFrame with a plain row index.

    A path ending in .csv, .csv.gz or .txt is read as CSV (.txt sniffs the delimiter), one
    ending in .parquet or .pq as Parquet. A DataFrame is copied shallowly and passed through.
    A DatetimeIndex becomes the first column, named after the index or 'time', so that
    `prepare` finds it like any other time column.
    """
    if isinstance(source, pd.DataFrame):
        frame = datetime_index_to_column(source.copy(deep=False), "the DataFrame")
        if frame.shape[0] == 0 or frame.shape[1] == 0:
            raise DataError(
                f"the DataFrame is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)"
            )
        return frame

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
        if kind == "Parquet":
            frame = pd.read_parquet(path)
        elif name.endswith(".txt"):
            # .txt files are as often tab- or semicolon-separated as comma-separated.
            frame = pd.read_csv(path, sep=None, engine="python")
        else:
            frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file '{path}' is empty") from None
    # pandas and pyarrow raise many unrelated exception types on corrupt or odd files; whatever
    # the type, the user needs the file name and the reason on one line.
    except Exception as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"data file '{path}' could not be read as {kind}: {reason}") from exc

    frame = datetime_index_to_column(frame, f"data file '{path}'")
    if frame.shape[0] == 0:
        raise DataError(f"data file '{path}' has no data rows (only a header)")
    if frame.shape[1] == 0:
        raise DataError(f"data file '{path}' has no columns")
    return frame


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
