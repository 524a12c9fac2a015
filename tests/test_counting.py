"""``balance.counting.count_batch``, the kernel both counting paths share, on hand-made batches."""

from __future__ import annotations

import numpy as np
import pytest

from balance.counting import Where, count_batch
from balance.errors import InvalidDataError


def count(values, lengths, weights=None, **kw):
    kw = {"task": "multiclass", "form": "sparse", **kw}
    return count_batch(np.asarray(values), np.asarray(lengths), weights, **kw)


def test_sparse_ids_and_whole_floats_weighted():
    out = count([2.0, 0.0, 2.0], [1, 1, 1], np.array([0.5, 1.0, 2.0]), num_classes=4)
    np.testing.assert_array_equal(out.ids, [1.0, 0.0, 2.5, 0.0])
    assert (out.examples, out.kind) == (3.5, "int")


def test_binary_has_two_classes_and_refuses_other_ids():
    np.testing.assert_array_equal(count([1, 1], [1, 1], task="binary").ids, [0.0, 2.0])
    with pytest.raises(InvalidDataError, match=r"class ids in \[0, 2\). Received: labels=2. Found in example 1"):
        count([0, 2], [1, 1], task="binary")


def test_one_hot_multi_hot_id_lists_dense():
    np.testing.assert_array_equal(count([0, 1, 0, 1, 0, 0], [3, 3], form="one_hot").ids, [1.0, 1.0, 0.0])
    multi = count([1, 1, 0, 0, 1, 1], [3, 3], np.array([1.0, 2.0]), task="multilabel", form="multi_hot")
    np.testing.assert_array_equal(multi.ids, [1.0, 3.0, 2.0])
    lists = count([2, 2, 1], [2, 0, 1], task="multilabel", form="id_lists")  # an id counts once per record
    np.testing.assert_array_equal(lists.ids, [0.0, 1.0, 1.0])
    dense = count([0, 255, 1, 1], [2, 2], form="dense", ignore_value=255)
    np.testing.assert_array_equal(dense.ids, [1.0, 2.0])
    assert dense.elements == 3.0 and dense.examples == 2.0


def test_bad_values_name_file_and_record():
    where = Where("a.tfrecord", np.array([10, 11, 12]))
    with pytest.raises(InvalidDataError, match="Received: labels=1.5. Found in file 'a.tfrecord', record 11"):
        count([0.0, 1.5, 2.0], [1, 1, 1], where=where)
    with pytest.raises(InvalidDataError, match=r"one-hot rows with exactly one 1.*record 12"):
        count([1, 0, 1, 0, 1, 1], [2, 2, 2], form="one_hot", where=where)
    with pytest.raises(InvalidDataError, match="0/1 values in multi-hot vectors. Received: labels=2.*record 11"):
        count([1, 0, 2, 0], [2, 2], task="multilabel", form="multi_hot", where=where)


def test_strings_decode_strictly_and_merge_bytes_with_str():
    out = count(np.array([b"caf\xc3\xa9", "café", b"x"], dtype=object), [1, 1, 1], np.array([1.0, 2.0, 4.0]))
    assert out.names == {"café": 3.0, "x": 4.0} and out.kind == "string"
    with pytest.raises(InvalidDataError, match=r"Expected UTF-8 text. Received: labels=b'\\xff'. Found in example 1"):
        count(np.array([b"a", b"\xff", b"a"], dtype=object), [1, 1, 1])
    with pytest.raises(InvalidDataError, match="int class ids for label_form='dense'"):
        count(np.array(["a", "b"]), [2], form="dense")
