"""``check_model_outputs`` when the tables and the model disagree on how many outputs there are."""

from __future__ import annotations

import re

import keras
import pytest

import balance
from balance import WeightTable
from balance.errors import InvalidArgumentError

t = WeightTable.from_counts([50, 30, 20])
t2 = WeightTable.from_counts([90, 10])


def test_several_tables_for_a_model_with_one_output():
    sequential_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(InvalidArgumentError, match=re.escape(
            "Expected one WeightTable: the model has one output (shape (None, 3)). "
            "Received: table=\"tables for 2 outputs ['a', 'b']\". Pass the one table")):
        balance.check_model_outputs(sequential_model, {"a": t, "b": t2})
    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(3, name="only")(inputs))
    assert balance.check_model_outputs(functional, {"only": t}) == {"only": 3}  # its one output, by name
    with pytest.raises(InvalidArgumentError, match="the model has one output"):
        balance.check_model_outputs(functional, {"only": t, "b": t2})


def test_one_table_for_a_model_with_several_outputs():
    inputs = keras.Input((4,))
    two_heads = keras.Model(inputs, {"a": keras.layers.Dense(3, name="a")(inputs),
                                     "b": keras.layers.Dense(2, name="b")(inputs)})
    with pytest.raises(InvalidArgumentError, match=re.escape(
            "Expected one WeightTable per output, as {output name: table}: the model has 2 outputs ['a', 'b']")):
        balance.check_model_outputs(two_heads, t)
    assert balance.check_model_outputs(two_heads, {"a": t, "b": t2}) == {"a": 3, "b": 2}
