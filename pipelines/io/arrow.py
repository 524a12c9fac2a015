"""Arrow label and weight columns -> the ragged numpy form ``ShardCounter`` counts.

Everything is vectorised with ``pyarrow.compute``; only a batch that fails a
cast falls back to Python, element by element, to find its bad values.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from balance.errors import invalid
from pipelines.config import StatsConfig


def arrow_labels(
    column: pa.Array | pa.ChunkedArray, config: StatsConfig, *, text: bool, arrow_strings: bool = False
) -> tuple[np.ndarray | pa.Array, np.ndarray, np.ndarray | None]:
    """Returns ``(values, lengths, wrong_type)`` for one batch of a label column.

    Args:
      column: scalar (int, float, string) or list column; nulls are missing.
      config: the job config (label form, dtype and delimiter).
      text: True for CSV, whose cells are strings that may hold ints (and,
        for list forms, ``label_delimiter``-separated lists).
      arrow_strings: string labels stay an Arrow array (counted in Arrow by
        ``balance.counting``); else they become a numpy array of Python objects.

    Returns:
      Flat label values, values per row, and a per-row mask of wrong types
      (their values are placeholders) or None.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    column = _decoded(column)
    if text and config.form != "sparse" and _is_text(column.type):
        column = pc.split_pattern(column, config.label_delimiter)
    if _is_list(column.type):
        lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
        flat = _decoded(pc.list_flatten(column))
        _check_type(flat.type, config, "a list of")
    elif pa.types.is_null(column.type):  # a column of nulls only: every label is missing
        lengths = np.zeros(n, dtype=np.int64)
        flat = pa.array([], pa.int64())
    else:
        _check_type(column.type, config, "")
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        lengths = (~nulls).astype(np.int64)
        flat = column.drop_null()
    values, wrong_values = _convert(flat, config, text)
    if isinstance(values, pa.Array) and not arrow_strings:
        values = values.to_numpy(zero_copy_only=False).astype(object)
    wrong_rows = None
    if wrong_values is not None and wrong_values.any():
        rows = np.repeat(np.arange(n), lengths)
        wrong_rows = np.zeros(n, dtype=bool)
        wrong_rows[rows[wrong_values]] = True
    return values, np.asarray(lengths, dtype=np.int64), wrong_rows


def _is_text(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _is_list(dtype: pa.DataType) -> bool:
    return pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype)


def _decoded(column: pa.Array) -> pa.Array:
    """A dictionary column (pandas ``category``) as its values; string views as strings."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(column.type):
        column = column.cast(pa.string())
    if hasattr(pa.types, "is_binary_view") and pa.types.is_binary_view(column.type):
        column = column.cast(pa.binary())
    return column


def _is_label_type(dtype: pa.DataType) -> bool:
    return (pa.types.is_integer(dtype) or pa.types.is_boolean(dtype) or pa.types.is_floating(dtype)
            or pa.types.is_decimal(dtype) or _is_text(dtype) or pa.types.is_binary(dtype)
            or pa.types.is_large_binary(dtype) or pa.types.is_null(dtype))


def _check_type(dtype: pa.DataType, config: StatsConfig, of: str) -> None:
    """Refuses a column type that holds no class ids or names (timestamps, structs, lists of lists, ...)."""
    if not _is_label_type(dtype):
        raise invalid("label", "a column of ints, whole-number floats or strings (or lists of them)",
                      config.label, hint=f"The column {config.label!r} holds {of}{' ' if of else ''}{dtype} "
                      "values, which are not class ids or names")


def _convert(flat: pa.Array, config: StatsConfig, text: bool) -> tuple[np.ndarray | pa.Array, np.ndarray | None]:
    """Flat label values as int64 ids or an Arrow array of strings, plus a mask of wrong-typed values."""
    nulls = flat.is_null().to_numpy(zero_copy_only=False)
    dtype = flat.type
    if pa.types.is_boolean(dtype):  # False, True: classes 0, 1
        flat, dtype = pc.cast(flat, pa.int64()), pa.int64()
    if pa.types.is_integer(dtype):
        if pa.types.is_uint64(dtype) and len(flat) - flat.null_count:
            largest = pc.max(flat).as_py()
            if largest >= 1 << 63:  # would wrap to a negative int64 id
                raise invalid("label", "class ids within the int64 range", largest,
                              hint=f"The uint64 column {config.label!r} holds {largest}; class ids are small "
                              "ints from 0 (or pass --label_dtype string for names)")
        ids = pc.fill_null(flat, 0).to_numpy(zero_copy_only=False).astype(np.int64)
        return ids, nulls if nulls.any() else None
    if pa.types.is_null(dtype):  # a list of nulls only: missing values
        return np.zeros(len(flat), dtype=np.int64), nulls if nulls.any() else None
    if pa.types.is_decimal(dtype):  # as floats: whole numbers are ids, others are refused by value
        flat, dtype = pc.cast(flat, pa.float64()), pa.float64()
    if pa.types.is_floating(dtype):
        # Whole-number floats are ids; ShardCounter refuses others by value (balance.counting.whole_ids).
        floats = pc.fill_null(flat, 0).to_numpy(zero_copy_only=False).astype(np.float64)
        return floats, nulls if nulls.any() else None
    if _is_text(dtype) or pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype):
        wants_strings = config.label_dtype == "string" or (
            config.label_dtype == "auto" and not text and config.form == "sparse")
        if wants_strings and not nulls.any():
            return flat, None
        ids = _cast(flat, pa.int64())
        if ids is None:  # "1.0" as written from pandas floats: ids by the whole-number rule
            ids = _cast(flat, pa.float64())
        if ids is not None:
            return ids, nulls if nulls.any() else None
        if config.label_dtype == "auto" and config.form == "sparse" and not nulls.any():
            return flat, None
        return _python_ids(flat.to_pylist())
    raise invalid("label", "a column of ints, whole-number floats or strings", config.label,
                  hint=f"The column {config.label!r} holds {dtype} values")


def _cast(flat: pa.Array, dtype: pa.DataType) -> np.ndarray | None:
    """Text cells parsed as ``dtype`` (nulls as 0), or None if one does not parse.

    The first cells are tried alone first: a cast that fails costs as much as
    one that succeeds, and a batch of string labels fails on its first cell.
    """
    filled = pc.fill_null(flat, "0")
    try:
        pc.cast(filled.slice(0, 16), dtype)
        return pc.cast(filled, dtype).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _python_ids(cells: list) -> tuple[np.ndarray, np.ndarray]:
    """Slow path for a batch that holds non-integers: find them one by one."""
    ids = np.zeros(len(cells), dtype=np.int64)
    wrong = np.zeros(len(cells), dtype=bool)
    for i, cell in enumerate(cells):
        try:
            ids[i] = int(cell)
        except (TypeError, ValueError):
            try:
                number = float(cell)
                if number.is_integer() and abs(number) < 2**53:
                    ids[i] = int(number)
                    continue
            except (TypeError, ValueError):
                pass
            wrong[i] = True
    return ids, wrong


def arrow_weights(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One float64 weight per row; NaN where missing or not a number."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    column = _decoded(column)
    dtype = column.type
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    if _is_text(dtype):
        try:
            return pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
        except pa.ArrowInvalid:
            return np.array([_float_or_nan(c) for c in column.to_pylist()], dtype=np.float64)
    return np.full(len(column), np.nan)


def _float_or_nan(cell) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return float("nan")
