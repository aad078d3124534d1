"""The memory-mapped table: the same values, times and errors as the in-memory read, chunk by
chunk, built once; and the statistics computed in chunks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_frame

from lstmcast.data import mapped
from lstmcast.data.load import read_table
from lstmcast.data.scale import fit_scaler
from lstmcast.data.validate import prepare
from lstmcast.errors import ConfigError, DataError
from lstmcast.evaluation.metrics import naive_one_step_mae


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 7 rows, so that every check meets a chunk boundary, and a pandas sample of 5
    (which chooses the columns), so that the chunked checks are the ones that meet bad cells."""
    monkeypatch.setattr(mapped, "CHUNK_ROWS", 7)
    monkeypatch.setattr(mapped, "SAMPLE_ROWS", 5)


def write(frame: pd.DataFrame, path) -> str:
    if str(path).endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize("name", ["series.csv", "series.csv.gz", "series.parquet"])
def test_mapped_values_and_times_equal_the_in_memory_read(tmp_path, small_chunks, name):
    frame = make_frame(100)
    path = write(frame, tmp_path / name)
    table = mapped.map_table(path, cache_dir=tmp_path / "cache")
    series = prepare(read_table(path))
    assert table.targets == series.targets and table.time_col == "date"
    assert table.freq == series.freq == "h"
    np.testing.assert_array_equal(np.asarray(table.values), series.values)
    assert table.values.dtype == np.float32
    assert table.time is not None and table.time.equals(series.time)
    assert table.sha256 == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    tail = table.frame(slice(90, 100))
    np.testing.assert_allclose(tail["load"].to_numpy(), series.values[90:100, 0])
    assert list(tail.columns) == ["date", *series.targets]


def test_ffill_across_chunks_equals_the_in_memory_fill(tmp_path, small_chunks):
    frame = make_frame(60)
    frame.loc[[0, 1, 6, 7, 8, 20], "load"] = np.nan  # leading gap and gaps over a boundary
    frame.loc[13:15, "temp"] = np.nan
    path = write(frame, tmp_path / "gaps.csv")
    table = mapped.map_table(path, fill="ffill", cache_dir=tmp_path / "cache")
    series = prepare(read_table(path), fill="ffill")
    np.testing.assert_array_equal(np.asarray(table.values), series.values)


def test_targets_and_covariates_keep_their_order(tmp_path):
    path = write(make_frame(50), tmp_path / "s.parquet")
    table = mapped.map_table(
        path, targets=("price", "load"), covariates=("hour",), cache_dir=tmp_path / "c"
    )
    assert table.columns == ("price", "load", "hour")
    frame = make_frame(50)
    np.testing.assert_allclose(
        np.asarray(table.values), frame[["price", "load", "hour"]].to_numpy(), rtol=1e-6
    )


def test_a_second_map_opens_what_the_first_built_and_a_changed_file_builds_afresh(
    tmp_path, monkeypatch
):
    path = write(make_frame(50), tmp_path / "s.csv")
    first = mapped.map_table(path, cache_dir=tmp_path / "c")

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    with monkeypatch.context() as patch:
        patch.setattr(mapped, "_build", no_build)
        again = mapped.map_table(path, cache_dir=tmp_path / "c")
        assert again.key == first.key
        with pytest.raises(AssertionError, match="built again"):  # another column set
            mapped.map_table(path, targets=("load",), cache_dir=tmp_path / "c")
    changed = make_frame(50)
    changed.loc[10, "load"] = 99.0
    write(changed, tmp_path / "s.csv")
    fresh = mapped.map_table(path, cache_dir=tmp_path / "c")
    assert fresh.key != first.key and float(fresh.values[10, 0]) == 99.0


def test_cache_dir_defaults_beside_the_file_or_to_the_environment(tmp_path, monkeypatch):
    path = write(make_frame(30), tmp_path / "s.csv")
    monkeypatch.delenv(mapped.CACHE_ENV, raising=False)
    assert mapped.map_table(path).cache_dir == tmp_path / ".lstmcast-cache"
    monkeypatch.setenv(mapped.CACHE_ENV, str(tmp_path / "elsewhere"))
    table = mapped.map_table(path)
    assert table.cache_dir == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere" / f"{table.key}.json").exists()


def test_a_failed_build_leaves_no_files_that_look_whole(tmp_path, small_chunks):
    frame = make_frame(40)
    frame["load"] = frame["load"].astype(object)
    frame.loc[30, "load"] = "oops"
    path = write(frame, tmp_path / "bad.csv")
    with pytest.raises(DataError, match=r"bad.csv.*could not be read as CSV") as caught:
        mapped.map_table(path, targets=("load",), cache_dir=tmp_path / "c")
    assert "\n" not in str(caught.value)
    assert not [p for p in (tmp_path / "c").iterdir() if p.suffix in (".json", ".f32", ".time")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.loc.__setitem__((23, "temp"), np.nan), r"column 'temp' row 24 is empty"),
        (lambda f: f.loc.__setitem__((17, "price"), np.inf), r"column 'price' row 18 holds inf"),
        (
            lambda f: f.loc.__setitem__((15, "date"), f.loc[14, "date"]),
            r"column 'date' row 16 .* repeats the timestamp of row 15",
        ),
        (
            lambda f: f.loc.__setitem__((21, "date"), f.loc[3, "date"]),
            r"column 'date' row 22 .* comes before row 21",
        ),
        (lambda f: f.__setitem__("hour", 1.0), r"column 'hour' is constant"),
        (lambda f: f.loc.__setitem__((16, "load"), 1e39), r"beyond float32's range"),
    ],
)
def test_bad_cells_are_named_by_column_and_file_row(tmp_path, small_chunks, change, message):
    frame = make_frame(40)
    change(frame)
    path = write(frame, tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=message) as caught:
        mapped.map_table(path, cache_dir=tmp_path / "c")
    assert "\n" not in str(caught.value)


def test_options_a_chunked_read_cannot_honour_are_refused(tmp_path):
    path = write(make_frame(30), tmp_path / "s.csv")
    with pytest.raises(ConfigError, match=r"--fill interpolate .* --fill ffill"):
        mapped.map_table(path, fill="interpolate", cache_dir=tmp_path / "c")
    with pytest.raises(ConfigError, match="--scaler robust"):
        mapped.chunked_scaler(np.ones((5, 2), np.float32), (0, 5), "robust")
    comma = tmp_path / "comma.csv"
    comma.write_text("a;b\n1,5;2,5\n2,5;3,5\n3,5;1,0\n")
    with pytest.raises(DataError, match="decimals with a comma"):
        mapped.map_table(comma, cache_dir=tmp_path / "c")


@pytest.mark.parametrize("kind", ["standard", "minmax", "none"])
def test_chunked_statistics_equal_the_whole_array_ones(monkeypatch, kind):
    values = np.random.default_rng(1).normal(5, 3, (1000, 3)).astype(np.float32)
    one = mapped.chunked_scaler(values, (100, 900), kind)  # one chunk: the same arithmetic
    whole = fit_scaler(values[100:900], kind)
    np.testing.assert_array_equal(one.center, whole.center)
    np.testing.assert_array_equal(one.scale, whole.scale)
    monkeypatch.setattr(mapped, "CHUNK_ROWS", 37)
    many = mapped.chunked_scaler(values, (100, 900), kind)
    np.testing.assert_allclose(many.center, whole.center, rtol=1e-12)
    np.testing.assert_allclose(many.scale, whole.scale, rtol=1e-12)
    np.testing.assert_allclose(
        mapped.chunked_naive_mae(values, (100, 900), 2),
        naive_one_step_mae(values[100:900, :2]),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        mapped.chunked_mean(values, (100, 900), 3),
        values[100:900].astype(np.float64).mean(axis=0),
        rtol=1e-12,
    )
    change = np.diff(values[100:900, :2], axis=0)
    np.testing.assert_array_equal(
        mapped.chunked_up_fraction(values, (100, 900), 2),
        (change > 0).sum(axis=0) / (change != 0).sum(axis=0),
    )


def test_read_rows_reads_the_file_of_a_mapping(tmp_path):
    path = write(make_frame(50), tmp_path / "s.csv")
    table = mapped.map_table(path, cache_dir=tmp_path / "c")
    block = mapped.read_rows(table.values, 10, 20)
    assert not isinstance(block, np.memmap)
    np.testing.assert_array_equal(block, np.asarray(table.values[10:20]))


def test_the_scaled_copy_is_the_transform_of_every_row(tmp_path, small_chunks):
    path = write(make_frame(50), tmp_path / "s.csv")
    table = mapped.map_table(path, cache_dir=tmp_path / "c")
    scaler = mapped.chunked_scaler(table.values, (0, 30), "standard")
    scaled = mapped.scaled_copy(table, scaler)
    np.testing.assert_array_equal(np.asarray(scaled), scaler.transform(np.asarray(table.values)))
    assert np.asarray(mapped.scaled_copy(table, scaler)).tobytes() == np.asarray(scaled).tobytes()


@pytest.mark.parametrize("damage", ["cut values", "bad record", "no times"])
def test_a_damaged_cache_is_built_again_not_read(tmp_path, damage):
    path = write(make_frame(50), tmp_path / "s.csv")
    first = mapped.map_table(path, cache_dir=tmp_path / "c")
    expected = np.array(first.values)
    base = tmp_path / "c" / first.key
    del first
    if damage == "cut values":
        with open(f"{base}.f32", "r+b") as f:
            f.truncate(100)
    elif damage == "bad record":
        Path(f"{base}.json").write_text("{not json")
    else:
        Path(f"{base}.time").unlink()
    again = mapped.map_table(path, cache_dir=tmp_path / "c")
    np.testing.assert_array_equal(np.asarray(again.values), expected)
    assert again.time is not None and len(again.time) == 50


def test_compact_windows_keep_every_window_and_drop_the_rows_between(tmp_path, small_chunks):
    path = write(make_frame(200), tmp_path / "s.csv")
    table = mapped.map_table(path, cache_dir=tmp_path / "c")
    train, val = np.arange(0, 120, 30), np.arange(130, 180, 25)
    compact = mapped.compact_windows(table.values, [train, val], 10)
    assert compact is not None
    rows, (new_train, new_val) = compact
    assert len(rows) == 10 * (len(train) + len(val)) < len(table) / 2
    whole = np.asarray(table.values)
    for old, new in ((train, new_train), (val, new_val)):
        for s, n in zip(old, new, strict=True):
            np.testing.assert_array_equal(rows[n : n + 10], whole[s : s + 10])
    overlapping = [np.arange(0, 150, 5)]  # windows of 10 rows every 5: no saving
    assert mapped.compact_windows(table.values, overlapping, 10) is None
