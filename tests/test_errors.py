"""The public error types: users catch our errors by type, and each carries its fields."""

from __future__ import annotations

import ast
import builtins
import pathlib

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


# ------------------------------------------ every refusal is a balance.errors class
ROOT = pathlib.Path(__file__).resolve().parent.parent
# Raised for what is not a refusal of input: a missing optional dependency, a module's
# unknown attribute (PEP 562 ``__getattr__``), an abstract method.
NOT_REFUSALS = {"ImportError", "AttributeError", "NotImplementedError"}


def test_library_code_raises_only_the_project_errors():
    builtin = {name for name, value in vars(builtins).items()
               if isinstance(value, type) and issubclass(value, BaseException)}
    found = []
    for package in ("balance", "losses", "pipelines"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call | ast.Name):
                    func = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                    name = getattr(func, "id", None)
                    if name in builtin and name not in NOT_REFUSALS:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno} raises {name}")
    assert not found


def test_docs_list_every_error_class():
    text = (ROOT / "docs" / "errors.md").read_text()
    classes = [name for name, value in vars(errors).items()
               if isinstance(value, type) and issubclass(value, errors.RebalanceError)]
    assert len(classes) >= 5
    assert [name for name in classes if f"`{name}`" not in text] == []


def test_merging_weighted_and_unweighted_counts_is_an_argument_error():
    from pipelines.counting.combiners import ClassCounts, CountCombineFn  # noqa: PLC0415

    weighted = ClassCounts(weighted=True, ids=np.array([1.5], dtype=object))
    plain = ClassCounts(weighted=False, ids=np.array([2]))
    with pytest.raises(errors.InvalidArgumentError, match="all weighted or all unweighted"):
        CountCombineFn().merge_accumulators([weighted, plain])


def test_a_job_that_wrote_no_table_raises_a_job_error(tmp_path):
    import apache_beam as beam  # noqa: PLC0415

    from pipelines.jobs.runner import raise_reported  # noqa: PLC0415

    with beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create([1]) | beam.Map(lambda x: x)
    with pytest.raises(errors.JobError, match="finished without writing a new table to") as raised:
        raise_reported(pipeline.run(), {}, None, str(tmp_path / "t.json"))
    assert isinstance(raised.value, ValueError) and raised.value.state is None


def test_a_table_that_cannot_be_written_or_read_is_an_argument_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(errors.InvalidArgumentError, match=r"`path`. Expected a path where the table can be written"):
        WeightTable.from_counts([1, 2]).save(str(blocker / "t.json"))
    table = WeightTable.from_counts([1, 2]).save(str(tmp_path / "t.json"))
    from pipelines.cli import main  # noqa: PLC0415

    assert main(["merge", table, "--output", str(blocker / "m.json")]) == 1
    assert "Expected a path where the table can be written" in capsys.readouterr().err
