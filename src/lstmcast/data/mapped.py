"""Series larger than RAM: a table's values in a float32 memory-mapped file, built once in
chunks and reused, and the statistics a run needs, computed a chunk at a time.

`map_table` reads a CSV or Parquet file one chunk at a time (pyarrow's streaming readers),
checks each chunk as `prepare` checks a table (numbers, finite, a time in every row and the
times increasing, gaps filled forward or refused) and appends its values to `<key>.f32`, its
timestamps to `<key>.time`, in the cache directory; `<key>.json`, written last, says both are
whole. The key digests the file's bytes and the columns asked for, so a changed file or other
columns build afresh and a second run maps what the first built. The first `SAMPLE_ROWS` rows
are read once more with pandas and checked by `prepare`, so the time column, the targets and
the frequency are those the in-memory path would choose.

The process never holds the table: a chunk is at most `CHUNK_ROWS` rows, and the mapped pages
are the kernel's page cache, which it reclaims under pressure.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import mmap
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock

from lstmcast.data.calendar import time_text
from lstmcast.data.load import CSV_SUFFIXES, PARQUET_SUFFIXES, csv_style
from lstmcast.data.scale import _MIN_SCALE, Scaler
from lstmcast.data.validate import _is_text, _to_datetime, prepare
from lstmcast.errors import ConfigError, DataError
from lstmcast.files import write_json

FORMAT = 1
SAMPLE_ROWS = 10_000  # rows read with pandas to choose the columns and the frequency
CHUNK_ROWS = 1 << 20  # rows per chunk: 56 MB of float64 for 7 columns
CACHE_ENV = "LSTMCAST_CACHE_DIR"
_HASH_BLOCK = 8 << 20
# (what, done, total): what is being done ("hashing", "mapping", "scaling") and how far.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, eq=False)
class MappedTable:
    """A table mapped by `map_table`. `values` (T, F) float32 holds the targets then the
    covariates, memory-mapped copy-on-write (nothing is ever written back); `time` is a
    DatetimeIndex over the mapped timestamps (None without a time column)."""

    values: np.ndarray
    time: pd.DatetimeIndex | None
    targets: tuple[str, ...]
    covariates: tuple[str, ...]
    time_col: str | None
    freq: str | None
    sha256: str  # of the file's bytes, as `read_table_digest`
    source: str
    key: str
    cache_dir: Path

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def columns(self) -> tuple[str, ...]:
        return self.targets + self.covariates

    def frame(self, rows: slice) -> pd.DataFrame:
        """Rows `rows` as a table (the time column first), which `read_dataset` reads like
        the file: for `predict` and the plot of the forecast, which need only the last rows."""
        data: dict[str, Any] = {}
        if self.time is not None and self.time_col is not None:
            data[self.time_col] = self.time[rows]
        block = np.asarray(self.values[rows], dtype=np.float64)
        data |= {name: block[:, k] for k, name in enumerate(self.columns)}
        return pd.DataFrame(data)


def cache_dir_for(path: Path, cache_dir: str | Path | None = None) -> Path:
    """Where a file's mapped copy lives: `cache_dir`, else $LSTMCAST_CACHE_DIR, else a
    `.lstmcast-cache` folder beside the file."""
    chosen = cache_dir or os.environ.get(CACHE_ENV)
    return Path(chosen) if chosen else path.parent / ".lstmcast-cache"


def map_table(
    path: str | Path,
    *,
    targets: tuple[str, ...] | None = None,
    covariates: tuple[str, ...] = (),
    time_col: str | None = None,
    fill: str = "error",
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> MappedTable:
    """Map the CSV or Parquet file `path` (see the module's doc): build its float32 copy in
    the cache once, or open the one built before. DataError names the first bad cell (its
    column and row, counted from 1 as in the file's data rows), ConfigError an option the
    mapped path cannot honour (`--fill interpolate` needs the rows after a gap)."""
    path = Path(path)
    source = f"'{path}'"
    kind = _kind(path)
    if fill not in ("error", "ffill"):
        raise ConfigError(
            f"--fill {fill} reads the rows after a gap, which a chunked read has not reached; "
            f"with --memmap use --fill ffill or --fill error"
        )
    digest = file_sha256(path, progress)
    sample = _sample(path, kind, source)
    first = prepare(
        sample,
        time_col=time_col,
        targets=list(targets) if targets else None,
        covariates=list(covariates),
        fill=fill,
        source=source,
        allow_constant=True,  # judged on the whole table below
    )
    columns = first.targets + first.covariates
    key = hashlib.sha256(
        json.dumps(
            {
                "format": FORMAT,
                "data": digest,
                "columns": columns,
                "time_col": first.time_col,
                "fill": fill,
            }
        ).encode()
    ).hexdigest()[:32]
    directory = cache_dir_for(path, cache_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the cache directory '{directory}' for {source}: {exc.strerror}; "
            f"set {CACHE_ENV} to a writable folder"
        ) from exc
    meta_path = directory / f"{key}.json"
    with FileLock(str(directory / f"{key}.lock")):  # one builder; the others wait and open
        if not _whole(meta_path, len(columns), first.time_col is not None):
            n_rows = _build(
                path, kind, source, columns, first.time_col, fill, directory, key, progress
            )
            write_json(
                meta_path,
                {
                    "format": FORMAT,
                    "source_sha256": digest,
                    "columns": list(columns),
                    "time_col": first.time_col,
                    "fill": fill,
                    "rows": n_rows,
                },
            )
    meta = json.loads(meta_path.read_text())
    n_rows = int(meta["rows"])
    values = np.memmap(directory / f"{key}.f32", np.float32, "c", shape=(n_rows, len(columns)))
    time = None
    if first.time_col is not None:
        stamps = np.memmap(directory / f"{key}.time", np.int64, "c", shape=(n_rows,))
        time = pd.DatetimeIndex(stamps.view("M8[ns]"), copy=False, name=first.time_col)
        if first.time is not None and first.time.tz is not None:
            time = time.tz_localize("UTC").tz_convert(first.time.tz)
    return MappedTable(
        values,
        time,
        first.targets,
        first.covariates,
        first.time_col,
        first.freq,
        digest,
        source,
        key,
        directory,
    )


def _whole(meta_path: Path, width: int, timed: bool) -> bool:
    """Whether the cache holds a whole build: its record readable and its files of the sizes
    the record gives (a damaged or cut copy is built again, never read)."""
    try:
        rows = int(json.loads(meta_path.read_text())["rows"])
        values = meta_path.with_suffix(".f32").stat().st_size == rows * width * 4
        time = not timed or meta_path.with_suffix(".time").stat().st_size == rows * 8
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return values and time


def file_sha256(path: Path, progress: Progress | None = None) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress("hashing", done, total)
    return digest.hexdigest()


def _kind(path: Path) -> str:
    if not path.exists():
        raise DataError(f"data file '{path}' does not exist")
    if path.is_dir():
        raise DataError(f"data file '{path}' is a directory; pass a .csv or .parquet file")
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "Parquet"
    if name.endswith(CSV_SUFFIXES):
        return "CSV"
    allowed = ", ".join(CSV_SUFFIXES + PARQUET_SUFFIXES)
    raise DataError(f"data file '{path}' has an unsupported extension; allowed: {allowed}")


def _sample(path: Path, kind: str, source: str) -> pd.DataFrame:
    """The first `SAMPLE_ROWS` rows, read with pandas."""
    try:
        if kind == "Parquet":
            import pyarrow.parquet as pq

            batch = next(pq.ParquetFile(path).iter_batches(batch_size=SAMPLE_ROWS), None)
            if batch is None:
                raise DataError(f"data file {source} has no data rows")
            return batch.to_pandas()
        sep, decimal = _csv_style(path, source)
        return pd.read_csv(path, sep=sep, decimal=decimal, nrows=SAMPLE_ROWS)
    except DataError:
        raise
    except Exception as exc:  # pandas and pyarrow raise many types on a damaged file
        raise DataError(
            f"data file {source} could not be read as {kind}: {_one_line(exc)}"
        ) from exc


def _csv_style(path: Path, source: str) -> tuple[str, str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(64 * 1024)
    sep, decimal = csv_style(head, f"data file {source}")
    if decimal == ",":
        raise DataError(
            f"data file {source} writes decimals with a comma; with --memmap save it with "
            f"decimal points (or as Parquet)"
        )
    return sep or ",", decimal


def _batches(
    path: Path, kind: str, source: str, names: list[str], floats: tuple[str, ...]
) -> Iterator[Any]:
    """The file's rows as pyarrow record batches of the columns `names` (those in `floats`
    read as float64)."""
    import pyarrow as pa

    if kind == "Parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS, columns=names)
        return
    from pyarrow import csv

    sep, _ = _csv_style(path, source)
    stream = pa.input_stream(str(path), compression="detect")
    types: dict[str, Any] = {name: pa.float64() for name in floats}
    types |= {name: pa.string() for name in names if name not in floats}
    reader = csv.open_csv(
        stream,
        read_options=csv.ReadOptions(block_size=32 << 20),
        parse_options=csv.ParseOptions(delimiter=sep),
        convert_options=csv.ConvertOptions(include_columns=names, column_types=types),
    )
    for batch in reader:
        if batch.num_rows > CHUNK_ROWS:  # a block holds more rows than a chunk
            for start in range(0, batch.num_rows, CHUNK_ROWS):
                yield batch.slice(start, CHUNK_ROWS)
        else:
            yield batch


def _build(
    path: Path,
    kind: str,
    source: str,
    columns: tuple[str, ...],
    time_col: str | None,
    fill: str,
    directory: Path,
    key: str,
    progress: Progress | None,
) -> int:
    """Write `<key>.f32` (and `<key>.time`) chunk by chunk; returns the row count. The files
    are written under temporary names and renamed once whole."""
    names = list(columns) + ([time_col] if time_col is not None else [])
    total = _row_estimate(path, kind)
    values_path, time_path = directory / f"{key}.f32", directory / f"{key}.time"
    partial_values = values_path.with_suffix(f".f32.{os.getpid()}.partial")
    partial_time = time_path.with_suffix(f".time.{os.getpid()}.partial")
    offset, carry, last_time = 0, None, None
    low = np.full(len(columns), np.inf, dtype=np.float32)
    high = np.full(len(columns), -np.inf, dtype=np.float32)
    try:
        with contextlib.ExitStack() as files:
            out = files.enter_context(partial_values.open("wb"))
            out_time = files.enter_context(partial_time.open("wb")) if time_col else None
            try:
                for batch in _batches(path, kind, source, names, columns):
                    block = np.column_stack(
                        [_floats(batch.column(name), name, offset, source) for name in columns]
                    )
                    block, carry = _fill_chunk(block, carry, columns, offset, fill, source)
                    small = _float32(block, columns, offset, source)
                    low, high = (
                        np.minimum(low, small.min(axis=0)),
                        np.maximum(high, small.max(axis=0)),
                    )
                    out.write(small.tobytes())
                    if out_time is not None and time_col is not None:
                        stamps = _stamps(batch.column(time_col), time_col, offset, source)
                        _check_order(stamps, last_time, time_col, offset, source)
                        last_time = int(stamps[-1])
                        out_time.write(stamps.tobytes())
                    offset += batch.num_rows
                    if progress is not None:
                        progress("mapping", offset, max(total, offset))
            except DataError:
                raise
            except Exception as exc:  # pyarrow's conversion errors name the column
                raise DataError(
                    f"data file {source} could not be read as {kind} after data row {offset}: "
                    f"{_one_line(exc)}"
                ) from exc
        if offset < 2:
            raise DataError(f"{source}: has {offset} row(s) of data; forecasting needs at least 2")
        _not_constant(low, high, columns, source)
        os.replace(partial_values, values_path)
        if time_col is not None:
            os.replace(partial_time, time_path)
    finally:
        partial_values.unlink(missing_ok=True)
        partial_time.unlink(missing_ok=True)
    return offset


def _row_estimate(path: Path, kind: str) -> int:
    """The row count (Parquet's footer), a plain CSV file's size over its first rows' width,
    or 0 (unknown, for gzip)."""
    if kind == "Parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if path.name.lower().endswith(".gz"):
        return 0  # unknown: the bar counts rows only
    with path.open("rb") as f:
        head = f.read(1 << 20)
    rows = max(head.count(b"\n") - 1, 1)
    return int(path.stat().st_size / (len(head) / rows)) if head else 0


def _floats(column: Any, name: str, offset: int, source: str) -> np.ndarray:
    """float64 values of one chunk's column (NaN where empty); DataError at an infinity or a
    column that is not numeric."""
    import pyarrow as pa
    import pyarrow.types as pt

    if not (
        pt.is_floating(column.type)
        or pt.is_integer(column.type)
        or pt.is_boolean(column.type)
        or pt.is_decimal(column.type)
    ):
        raise DataError(
            f"{source}: column '{name}' has type {column.type}; with --memmap targets and "
            f"covariates must be stored as numbers"
        )
    values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    values = np.array(values, dtype=np.float64)  # writable, NaN where a cell is empty
    infinite = np.flatnonzero(np.isinf(values))
    if len(infinite):
        row = offset + int(infinite[0])
        raise DataError(
            f"{source}: column '{name}' row {row + 1} holds {values[row - offset]}; values "
            f"must be finite"
        )
    return values


def _fill_chunk(
    block: np.ndarray,
    carry: np.ndarray | None,
    columns: tuple[str, ...],
    offset: int,
    fill: str,
    source: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill a chunk's gaps forward from `carry` (the last row before it; leading gaps take the
    first value after them, as `prepare` does); "error" refuses the first gap."""
    missing = np.isnan(block)
    if missing.any():
        if fill == "error":
            row, col = np.argwhere(missing)[0]
            raise DataError(
                f"{source}: column '{columns[col]}' row {offset + int(row) + 1} is empty; use "
                f"--fill ffill (--fill interpolate is not open to --memmap)"
            )
        frame = pd.DataFrame(block)
        if carry is not None:
            frame = pd.concat([pd.DataFrame(carry[None, :]), frame], ignore_index=True).ffill()
            frame = frame.iloc[1:]
        block = frame.ffill().bfill().to_numpy(dtype=np.float64)
        empty = np.flatnonzero(np.isnan(block).all(axis=0))
        if len(empty):
            raise DataError(
                f"{source}: column '{columns[int(empty[0])]}' has no value in its first "
                f"{offset + len(block)} rows; with --memmap a column's first chunk needs one"
            )
    return block, block[-1].copy()


def _float32(block: np.ndarray, columns: tuple[str, ...], offset: int, source: str) -> np.ndarray:
    with np.errstate(over="ignore"):  # an overflow becomes inf, named below
        small = block.astype(np.float32)
    overflow = np.argwhere(np.isinf(small))
    if len(overflow):
        row, col = overflow[0]
        raise DataError(
            f"{source}: column '{columns[col]}' row {offset + int(row) + 1} holds "
            f"{block[row, col]}, beyond float32's range; rescale the column"
        )
    return small


def _stamps(column: Any, name: str, offset: int, source: str) -> np.ndarray:
    """int64 nanoseconds (UTC for zoned times) of one chunk's time column."""
    series = column.to_pandas()
    if not pd.api.types.is_datetime64_any_dtype(series):
        if not _is_text(series):
            raise DataError(
                f"{source}: column '{name}' holds {series.dtype} values, not dates; pass "
                f"--time-col with a date column"
            )
        series = _to_datetime(series)
    time = pd.DatetimeIndex(series)
    bad = np.flatnonzero(time.isna())
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{source}: column '{name}' row {offset + row + 1} holds "
            f"{column[row].as_py()!r}, which is not a date/time; every row needs a time"
        )
    if time.tz is not None:
        time = time.tz_convert("UTC")
    return time.as_unit("ns").asi8.astype(np.int64)


def _check_order(stamps: np.ndarray, last: int | None, name: str, offset: int, source: str) -> None:
    """DataError at the first timestamp not after the one before it (repeats included: a
    mapped table takes no --duplicates policy)."""
    before = np.concatenate([[last], stamps[:-1]]) if last is not None else stamps[:-1]
    after = stamps if last is not None else stamps[1:]
    bad = np.flatnonzero(after <= before)
    if len(bad):
        row = offset + int(bad[0]) + (0 if last is not None else 1)
        what = "repeats the timestamp of" if after[bad[0]] == before[bad[0]] else "comes before"
        raise DataError(
            f"{source}: column '{name}' row {row + 1} ({time_text(int(after[bad[0]]))}) "
            f"{what} row {row}; with --memmap the rows must be sorted by time, one per timestamp"
        )


def _not_constant(low: np.ndarray, high: np.ndarray, columns: tuple[str, ...], source: str) -> None:
    """DataError for a column whose every value is the same (as `prepare`)."""
    flat = np.flatnonzero(low == high)
    if len(flat):
        k = int(flat[0])
        raise DataError(
            f"{source}: column '{columns[k]}' is constant (every value {float(low[k])!r}); "
            f"a constant column cannot be scaled or forecast - drop it"
        )


def read_rows(values: np.ndarray, start: int, stop: int) -> np.ndarray:
    """`values[start:stop]` as a new array. A memory-mapped table is read from its file, so a
    pass over every row leaves none of the mapping's pages in the process (a page read
    through the mapping stays counted in its resident memory until the kernel needs it)."""
    if not (isinstance(values, np.memmap) and isinstance(values.base, mmap.mmap)):
        return np.array(values[start:stop])
    width = values.shape[1] if values.ndim == 2 else 1
    item = values.dtype.itemsize * width
    with open(values.filename, "rb") as f:  # type: ignore[arg-type]
        f.seek(values.offset + start * item)
        block = np.fromfile(f, dtype=values.dtype, count=(stop - start) * width)
    return block.reshape((stop - start, *values.shape[1:]))


def compact_windows(
    values: np.ndarray, parts: Sequence[np.ndarray], span: int, most: float = 0.5
) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The rows the windows `parts` (arrays of starts, each window `span` rows) read, in
    memory and in order, with each part's starts renumbered into them: what a strided run
    trains on, without the rows between its windows. None when they are more than `most` of
    the rows (the mapping itself is then the cheaper series). The rows are read from the file
    a chunk at a time; a window's rows stay contiguous, so the gathers are unchanged."""
    total = sum(len(p) for p in parts) * span
    if total > most * len(values):
        return None
    rows = np.unique(np.concatenate([p[:, None] + np.arange(span) for p in parts]).ravel())
    blocks = []
    for a, b in chunks(0, len(values)):
        inside = rows[(rows >= a) & (rows < b)]
        if len(inside):
            blocks.append(
                read_rows(values, int(inside[0]), int(inside[-1]) + 1)[inside - inside[0]]
            )
    compact = np.concatenate(blocks) if blocks else values[:0].copy()
    return np.ascontiguousarray(compact), [np.searchsorted(rows, p) for p in parts]


def chunks(start: int, stop: int, size: int = CHUNK_ROWS) -> Iterator[tuple[int, int]]:
    """[a, b) row ranges of at most `size` rows covering [start, stop)."""
    for a in range(start, stop, size):
        yield a, min(a + size, stop)


# ----------------------------------------------------------------- statistics in chunks
def chunked_scaler(values: np.ndarray, rows: tuple[int, int], kind: str) -> Scaler:
    """`fit_scaler` of `values[rows[0]:rows[1]]`, a chunk at a time (the mean and spread are
    combined as Chan et al.'s parallel variance; with one chunk the arithmetic is
    `fit_scaler`'s). "robust" needs whole-column medians and is refused."""
    a, b = rows
    width = values.shape[1]
    if kind == "robust":
        raise ConfigError(
            "--scaler robust needs each column's median and quartiles over every training row; "
            "with --memmap use --scaler standard, minmax or none"
        )
    if kind == "none":
        return Scaler(kind, np.zeros(width), np.ones(width))
    n, mean, m2 = 0, np.zeros(width), np.zeros(width)
    low, high = np.full(width, np.inf), np.full(width, -np.inf)
    for start, stop in chunks(a, b):
        block = read_rows(values, start, stop).astype(np.float64)
        k = len(block)
        block_mean = block.mean(axis=0)
        block_m2 = (np.abs(block - block_mean) ** 2).sum(axis=0)
        total = n + k
        delta = block_mean - mean
        mean = mean + delta * (k / total) if n else block_mean
        m2 = m2 + block_m2 + delta**2 * (n * k / total) if n else block_m2
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
        n = total
    if kind == "standard":
        center, scale = mean, np.sqrt(m2 / n)
    else:
        center, scale = low, high - low
    return Scaler(kind, center, np.where(scale > _MIN_SCALE, scale, 1.0))


def scaled_copy(table: MappedTable, scaler: Scaler, progress: Progress | None = None) -> np.ndarray:
    """`table.values` scaled by `scaler`, as a float32 memory-mapped file in the cache (built
    once per scaler, a chunk at a time, with the arithmetic of `PanelScaler.transform_rows`)."""
    digest = hashlib.sha256(json.dumps(scaler.to_dict()).encode()).hexdigest()[:16]
    path = table.cache_dir / f"{table.key}.{digest}.scaled.f32"
    shape = table.values.shape
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            partial = path.with_suffix(f".{os.getpid()}.partial")
            center = scaler.center.astype(np.float32)
            scale = scaler.scale.astype(np.float32)
            try:
                with partial.open("wb") as out:
                    for a, b in chunks(0, shape[0]):
                        block = read_rows(table.values, a, b)
                        out.write(((block - center) / scale).tobytes())
                        if progress is not None:
                            progress("scaling", b, shape[0])
                os.replace(partial, path)
            finally:
                partial.unlink(missing_ok=True)
    return np.memmap(path, np.float32, "c", shape=shape)


def chunked_naive_mae(values: np.ndarray, rows: tuple[int, int], width: int) -> np.ndarray:
    """`naive_one_step_mae` of `values[a:b, :width]`: the mean |x_t - x_{t-1}| per column."""
    a, b = rows
    total = np.zeros(width)
    for start, stop in chunks(a, b):
        block = read_rows(values, max(start - 1, a), stop)[:, :width].astype(np.float64)
        total += np.abs(np.diff(block, axis=0)).sum(axis=0)
    return total / max(b - a - 1, 1)


def chunked_mean(values: np.ndarray, rows: tuple[int, int], width: int) -> np.ndarray:
    a, b = rows
    total = np.zeros(width)
    for start, stop in chunks(a, b):
        total += read_rows(values, start, stop)[:, :width].astype(np.float64).sum(axis=0)
    return total / max(b - a, 1)


def chunked_up_fraction(values: np.ndarray, rows: tuple[int, int], width: int) -> np.ndarray:
    """(width,) the share of up moves among the moves of `values[a:b]` (see `_up_fraction`)."""
    a, b = rows
    ups, moves = np.zeros(width), np.zeros(width)
    for start, stop in chunks(a, b):
        change = np.diff(read_rows(values, max(start - 1, a), stop)[:, :width], axis=0)
        ups += (change > 0).sum(axis=0)
        moves += (change != 0).sum(axis=0)
    return np.divide(ups, moves, out=np.full(width, 0.5), where=moves > 0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


__all__ = [
    "CACHE_ENV",
    "MappedTable",
    "cache_dir_for",
    "chunked_mean",
    "chunked_naive_mae",
    "chunked_scaler",
    "chunked_up_fraction",
    "chunks",
    "compact_windows",
    "file_sha256",
    "map_table",
    "read_rows",
    "scaled_copy",
]
