"""Read a table from CSV or Parquet (or pass a DataFrame through) with one-line errors."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import pandas as pd

from lstmcast.errors import DataError

CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Read `source` into a DataFrame with a plain row index (see `read_table_digest`)."""
    return read_table_digest(source)[0]


def read_table_digest(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Read `source` into a DataFrame with a plain row index, and the sha256 of what was read:
    of the file's bytes, hashed as the parser reads them (the file is opened once), or of a
    DataFrame's contents and index.

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

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as raw:
            if kind == "Parquet":  # pyarrow seeks (footer first): hash the bytes, parse those
                content = raw.read()
                digest.update(content)
                frame = pd.read_parquet(io.BytesIO(content))
            else:
                stream = _Hashing(raw, digest)
                if name.endswith(".txt"):
                    # .txt files are as often tab- or semicolon-separated as comma-separated.
                    frame = pd.read_csv(stream, sep=None, engine="python")
                elif name.endswith(".gz"):  # a stream has no name to infer compression from
                    frame = pd.read_csv(stream, compression="gzip")
                else:
                    frame = pd.read_csv(stream)
                stream.drain()  # the digest covers every byte, whatever the parser left
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
    return frame, digest.hexdigest()


def frame_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a DataFrame's contents and index."""
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


class _Hashing(io.RawIOBase):
    """A read-only binary stream over `raw` that feeds every byte it hands out to `digest`."""

    def __init__(self, raw: Any, digest: Any) -> None:
        super().__init__()
        self.raw, self.digest = raw, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        if n:
            self.digest.update(memoryview(buffer)[:n])
        return n or 0

    def drain(self) -> None:
        while block := self.raw.read(1 << 20):
            self.digest.update(block)


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
