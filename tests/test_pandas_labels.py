"""Labels held in pandas, as users hold them: ``WeightTable.from_labels(df["label"])``
counts a Series as its values, a categorical with its categories as the class
names in their order, without pandas being a dependency of ``balance``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from balance import WeightTable
from balance.errors import InvalidDataError

pd = pytest.importorskip("pandas")

DF = pd.DataFrame({"label": ["cat", "dog", "cat", "eel", "cat"], "id": [2, 0, 2, 1, 2],
                   "score": [1.0, 0.0, 2.0, 2.0, 2.0], "w": [1.0, 2.0, 1.0, 1.0, 0.5]})


def test_a_series_of_strings_ids_and_whole_floats():
    strings = WeightTable.from_labels(DF["label"])
    assert strings.class_names == ("cat", "dog", "eel") and strings.counts.tolist() == [3, 1, 1]
    assert strings.label_dtype == "string"
    assert WeightTable.from_labels(DF["id"]).counts.tolist() == [1, 1, 3]
    assert WeightTable.from_labels(DF["score"]).counts.tolist() == [1, 1, 3]
    assert WeightTable.from_labels(DF["id"].astype("Int64")).counts.tolist() == [1, 1, 3]  # nullable, no NA
    assert WeightTable.from_labels(DF["label"].astype("string")) == strings
    weighted = WeightTable.from_labels(DF["label"], sample_weight=DF["w"])
    assert weighted.counts.tolist() == [2.5, 2.0, 1.0]
    # The same table as the numpy array of the same labels.
    assert WeightTable.from_labels(DF["label"]).content_equal(WeightTable.from_labels(DF["label"].to_numpy()))


def test_a_categorical_keeps_its_categories_in_their_order():
    kinds = pd.CategoricalDtype(["eel", "dog", "cat", "ant"])  # "ant" never occurs: it counts 0
    table = WeightTable.from_labels(DF["label"].astype(kinds))
    assert table.class_names == ("eel", "dog", "cat", "ant") and table.counts.tolist() == [1, 1, 3, 0]
    assert table.num_classes == 4 and table.label_dtype == "string"
    default = WeightTable.from_labels(DF["label"].astype("category"))  # pandas sorts the categories it finds
    assert default.class_names == ("cat", "dog", "eel") and default.counts.tolist() == [3, 1, 1]
    numbered = WeightTable.from_labels(DF["id"].astype("category"))  # int categories: their values are the ids
    assert numbered.class_names is None and numbered.counts.tolist() == [1, 1, 3]


def test_missing_labels_are_refused_naming_the_example():
    for series in (pd.Series(["a", None, "b"], dtype="category"), pd.Series([1, None, 2], dtype="Int64"),
                   pd.Series([1.0, 0.0, np.nan])):
        with pytest.raises(InvalidDataError, match=r"Expected a label in every example.*Found in example [12]"):
            WeightTable.from_labels(series)


def test_a_dataframe_of_multi_hot_rows():
    rows = pd.DataFrame({"a": [1, 0, 1], "b": [0, 0, 1]})
    table = WeightTable.from_labels(rows, task="multilabel")
    assert table.counts.tolist() == [2, 1] and table.num_examples == 3


def test_balance_does_not_import_pandas():
    code = "import balance; balance.WeightTable.from_labels([0, 1]); import sys; print('pandas' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
