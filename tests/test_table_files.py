"""Weight-table files from elsewhere: hostile or odd JSON is refused with the
project's error naming the file, the field and the value, through every entry
point that reads a table (``WeightTable.load``, ``rebalance show``,
``rebalance merge``, ``load_tables``); what ``rebalance show`` prints cannot
drive the terminal."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from balance import WeightTable, jsonfile, load_tables
from balance.counting import MAX_INFERRED_CLASSES
from balance.errors import InvalidArgumentError, InvalidDataError, InvalidTableError
from pipelines.cli import main

GOOD = WeightTable.from_counts([3, 5], label_key="y").to_json()


def _edit(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


HOSTILE = {
    "nested 5000 deep": (_edit('"provenance": {', '"provenance": {"x": ' + "[" * 5000 + "]" * 5000 + ","),
                         "provenance", r"JSON nested at most 32 levels deep"),
    "huge int": (_edit('"num_examples": 8.0', '"num_examples": 1' + "0" * 400), "num_examples",
                 r"an integer within int64; received 1000"),
    "huge float": (_edit('"num_examples": 8.0', '"num_examples": 1e400'), "num_examples",
                   r"within the float64 range; received 1e400"),
    "duplicate key": (_edit('"counts": [', '"counts": [1, 2], "counts": ['), "counts",
                      r"the key 'counts' 2 times \(\[1, 2\] and \[3.0, 5.0\]\)"),
    "NaN": (_edit('"num_examples": 8.0', '"num_examples": NaN'), "num_examples", r"received NaN \(not JSON\)"),
    "Infinity in provenance": (_edit('"inputs": []', '"inputs": [], "x": -Infinity'), "provenance",
                               r"received -Infinity \(not JSON\)"),
    "lone surrogate": (_edit('"inputs": []', '"inputs": ["\\ud800"]'), None, r"a lone UTF-16 surrogate"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_json_is_refused_naming_file_field_and_value(case, tmp_path, capsys):
    text, field, match = HOSTILE[case]
    path = tmp_path / "bad.json"
    path.write_text(text)
    where = rf"Invalid weight table '{path}': " + (rf"field `{field}`" if field else "the file")
    with pytest.raises(InvalidTableError, match=where + ".*" + match) as raised:
        WeightTable.load(str(path))
    assert raised.value.source == repr(str(path))
    with pytest.raises(InvalidTableError, match=match):
        WeightTable.from_json(text)
    # The same one line from the command line, no traceback.
    assert main(["show", str(path)]) == 1
    assert main(["merge", str(path), str(path), "--output", str(tmp_path / "m.json")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count(f"'{path}'") == 2


def test_brackets_and_keys_inside_strings_do_not_count(tmp_path):
    names = ["[" * 40, '"counts": [1]', "{" * 40 + "NaN"]
    table = WeightTable.from_counts(dict.fromkeys(names, 1), label_key="y")
    assert WeightTable.load(table.save(str(tmp_path / "t.json"))) == table


def test_a_table_of_many_parts_is_not_too_deep(tmp_path):
    parts = [WeightTable.from_counts([i + 1, 1], inputs=[f"p{i}"]) for i in range(60)]
    merged = WeightTable.merge(*parts)
    assert WeightTable.load(merged.save(str(tmp_path / "m.json"))) == merged


def test_a_table_file_beyond_the_size_limit_is_refused_before_reading(tmp_path, monkeypatch, capsys):
    path = tmp_path / "big.json"
    path.write_text(GOOD + " " * 2000)
    monkeypatch.setattr(jsonfile, "MAX_BYTES", 1000)
    size = path.stat().st_size
    with pytest.raises(InvalidTableError, match=rf"'{path}': the file: expected a file of at most 1,000 bytes; "
                       rf"received {size:,} bytes"):
        WeightTable.load(str(path))
    assert main(["show", str(path)]) == 1
    assert "at most 1,000 bytes" in capsys.readouterr().err


def test_not_an_object_not_utf8_and_a_bom(tmp_path):
    path = tmp_path / "t.json"
    path.write_text("[1, 2]")
    with pytest.raises(InvalidTableError, match=r"Expected a JSON object. Received: table='list'"):
        WeightTable.load(str(path))
    path.write_bytes(GOOD.encode("utf-16"))
    with pytest.raises(InvalidTableError, match=rf"'{path}': the file: expected UTF-8 text; received byte b'\\xff' "
                       "at offset 0"):
        WeightTable.load(str(path))
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())  # a BOM, as some Windows editors add: nothing is lost
    assert WeightTable.load(str(path)) == WeightTable.from_json(GOOD)


def test_a_hostile_table_index_is_refused(tmp_path):
    WeightTable.from_counts([3, 5], label_key="a").save(str(tmp_path / "a.json"))
    (tmp_path / "index.json").write_text('{"format": "tf-rebalance/tables", "format_version": 1, '
                                         '"tables": {"a": "a.json"}, "tables": {"a": "a.json"}}')
    with pytest.raises(InvalidTableError, match=r"Invalid table index .*index.json': field `tables`.*2 times"):
        load_tables(str(tmp_path))


# ------------------------------------------------- class ids beyond the bound
@pytest.mark.parametrize("big", [2**40, 10**9, MAX_INFERRED_CLASSES])
def test_huge_class_id_without_num_classes_is_refused_naming_it(big):
    with pytest.raises(InvalidDataError, match=rf"Received: labels={big}. Found in example 1; .*pass num_classes= "
                       r"\(--num_classes on the command line\).*count them as strings"):
        WeightTable.from_labels(np.array([0, big, 1]))
    with pytest.raises(InvalidArgumentError, match=rf"Received: counts={big}.*Pass num_classes"):
        WeightTable.from_counts({0: 1, big: 2})


def test_a_large_id_is_counted_when_num_classes_says_so():
    table = WeightTable.from_labels(np.array([0, MAX_INFERRED_CLASSES]), num_classes=MAX_INFERRED_CLASSES + 1)
    assert table.counts[-1] == 1 and table.num_classes == MAX_INFERRED_CLASSES + 1


def test_the_stats_job_refuses_a_huge_id_naming_file_and_record(tmp_path, capsys):
    data = tmp_path / "big.csv"
    data.write_text("label\n0\n1\n1099511627776\n")
    assert main(["stats", "--input", str(data), "--format", "csv", "--label", "label",
                 "--output", str(tmp_path / "t.json"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"Received: labels=1099511627776. Found in file '{data}', record 2" in err and "--num_classes" in err
    assert not (tmp_path / "t.json").exists()


# --------------------------------------------------- rebalance show escapes
def test_show_escapes_terminal_control_characters(tmp_path, capsys):
    table = WeightTable.from_counts({"cat\x1b[2J\x1b[31m": 5, "dog\u202egnp.exe": 3, "eel\x07": 1},
                                    label_key="y\x1b]0;title\x07", inputs=["in\x1b[1m.csv"])
    assert main(["show", table.save(str(tmp_path / "t.json"))]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\u202e")
    assert "cat\\x1b[2J\\x1b[31m" in out and "dog\\u202egnp.exe" in out and "eel\\x07" in out
    assert "label 'y\\x1b]0;title\\x07'" in out and "in\\x1b[1m.csv" in out
    assert json.loads(WeightTable.load(str(tmp_path / "t.json")).to_json())["class_names"][0] == "cat\x1b[2J\x1b[31m"


# ------------------------------------------ written files follow the umask
@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_permissions_of_an_ordinary_write(tmp_path, umask, capsys):
    expected = 0o666 & ~umask
    data = tmp_path / "data.csv"
    data.write_text("y,z\n" + "".join(f"{i % 3},{i % 2}\n" for i in range(90)))
    table, multi, samp = tmp_path / "t.json", tmp_path / "multi", tmp_path / "samp"
    common = ["--input", str(data), "--format", "csv", "--quiet"]
    assert main(["stats", *common, "--label", "y", "--output", str(table)]) == 0
    assert main(["stats", *common, "--label", "y", "--label", "z", "--output", str(multi)]) == 0
    assert main(["sample", *common, "--label", "y", "--max_ratio", "1", "--output", str(samp)]) == 0
    WeightTable.from_counts([1, 2]).save(str(tmp_path / "saved.json"))
    assert main(["merge", str(table), str(tmp_path / "samp" / "_table.json"), "--disjoint",
                 "--output", str(tmp_path / "merged.json")]) == 0
    assert main(["show", str(table), "--plot", str(tmp_path / "plot.png")]) == 0
    capsys.readouterr()
    written = [table, multi / "index.json", multi / "y.json", multi / "_rebalance_manifest.json", samp / "_table.json",
               samp / "_rebalance_manifest.json", tmp_path / "saved.json", tmp_path / "merged.json",
               tmp_path / "plot.png"]
    assert {str(p): oct(_mode(p)) for p in written} == {str(p): oct(expected) for p in written}
    shards = [p for p in samp.iterdir() if p.name.startswith("part-")]
    assert shards and all(_mode(p) == expected for p in shards)


def test_a_replaced_table_keeps_its_mode(tmp_path):
    path = str(tmp_path / "t.json")
    WeightTable.from_counts([1, 2]).save(path)
    os.chmod(path, 0o640)
    WeightTable.from_counts([3, 4]).save(path)
    assert _mode(path) == 0o640 and WeightTable.load(path).counts.tolist() == [3, 4]
