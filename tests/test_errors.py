"""The public error types: users catch our errors by type, and each carries its fields."""

from __future__ import annotations

import numpy as np
import pytest

from balance import WeightTable, errors


def test_invalid_and_invalid_choice_build_argument_errors():
    err = errors.invalid("scheme", "a scheme name", "auto", hint="See balance.schemes")
    assert isinstance(err, errors.InvalidArgumentError) and isinstance(err, ValueError)
    assert (err.name, err.expected, err.received) == ("scheme", "a scheme name", "auto")
    assert str(err) == ("Invalid value for argument `scheme`. Expected a scheme name. Received: scheme='auto'. "
                        "See balance.schemes")
    choice = errors.invalid_choice("task", ["b", "a"], "c")
    assert isinstance(choice, errors.InvalidArgumentError) and "Expected one of ['a', 'b']" in str(choice)


def test_bad_arguments_bad_data_and_bad_tables_are_told_apart(tmp_path):
    with pytest.raises(errors.InvalidArgumentError):
        WeightTable.from_labels(np.array([0, 1]), task="multi")
    with pytest.raises(errors.InvalidDataError) as bad_label:
        WeightTable.from_labels(np.array([0.0, 1.0, 1.5]))
    assert (bad_label.value.path, bad_label.value.record) == (None, 2)
    with pytest.raises(errors.InvalidDataError) as bad_text:
        WeightTable.from_labels(np.array([b"a", b"\xff"], dtype=object))
    assert bad_text.value.record == 1 and "UTF-8" in str(bad_text.value)
    path = tmp_path / "t.json"
    path.write_text("{not json")
    with pytest.raises(errors.InvalidTableError) as bad_table:
        WeightTable.load(str(path))
    assert bad_table.value.source == repr(str(path))
    for err in (bad_label.value, bad_text.value, bad_table.value):
        assert isinstance(err, errors.RebalanceError) and isinstance(err, ValueError)


def test_data_error_names_file_and_record():
    err = errors.invalid_data("labels", "class ids in [0, 3)", 7, path="a.tfrecord", record=12)
    assert str(err).endswith("Received: labels=7. Found in file 'a.tfrecord', record 12")
    assert (err.path, err.record) == ("a.tfrecord", 12)


def test_errors_keep_their_fields_through_pickling_and_beam_style_rebuilding():
    import pickle

    err = errors.invalid_data("labels", "UTF-8 text", b"\xff", path="a.parquet", record=3)
    for clone in (pickle.loads(pickle.dumps(err)), type(err)(err.args[0] + " [while running 'Count']", *err.args[1:])):
        assert isinstance(clone, errors.InvalidDataError) and (clone.path, clone.record) == ("a.parquet", 3)
        assert str(clone).startswith("Invalid value for argument `labels`. Expected UTF-8 text.")
