"""A TFDS dataset built locally (nothing downloaded): the ClassLabel gives the
table its ``num_classes`` and ``class_names``; sliced splits are honoured."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow_datasets as tfds
from _pipelines_data import same_counts

from balance.table import WeightTable
from pipelines import run_class_stats as run

NAMES = ["cat", "dog", "eel", "fox", "gnu"]


def _label(i: int) -> int:
    return [0, 0, 0, 1, 1, 2, 0, 1, 0, 2, 0, 3][i % 12]  # class 4 never occurs


class TinyImbalanced(tfds.core.GeneratorBasedBuilder):
    """Labels follow ``_label``; 120 train and 24 test examples."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "x": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "label": tfds.features.ClassLabel(names=NAMES),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 120), "test": self._generate_examples(120, 144)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"x": np.full(2, i, np.float32), "label": _label(i)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    TinyImbalanced(data_dir=str(directory)).download_and_prepare()
    return str(directory)


@pytest.mark.parametrize("split, indices", [("train", range(120)), ("test", range(120, 144)),
                                            ("train[:25%]", None)])
def test_tfds_split_counts_with_class_label(tmp_path, data_dir, split, indices):
    table = run(["--format", "tfds", "--tfds_name", "tiny_imbalanced", "--tfds_data_dir", data_dir,
                 "--tfds_split", split, "--output", str(tmp_path / "t.json")])
    assert table.class_names == tuple(NAMES) and table.num_classes == 5
    assert table.counts[4] == 0
    if indices is None:  # a slice: the first 30 examples of the (shuffled) split, exactly
        builder = tfds.builder("tiny_imbalanced", data_dir=data_dir)
        labels = [int(x["label"]) for x in tfds.as_numpy(builder.as_dataset(split=split))]
        assert table.num_examples == 30 == len(labels)
    else:
        labels = [_label(i) for i in indices]
    ref = WeightTable.from_labels(np.array(labels), num_classes=5, class_names=NAMES,
                                  label_key="label")
    assert same_counts(table, ref)
    assert table.provenance["inputs"][0].startswith(f"tfds:tiny_imbalanced/{split}@")


def test_tfds_errors(tmp_path, data_dir):
    output = tmp_path / "t.json"
    with pytest.raises(ValueError, match=r"argument `label`. Expected a feature of the TFDS"):
        run(["--format", "tfds", "--tfds_name", "tiny_imbalanced", "--tfds_data_dir", data_dir,
             "--label", "y", "--output", str(output)])
    with pytest.raises(ValueError, match=r"argument `num_classes`. Expected 5"):
        run(["--format", "tfds", "--tfds_name", "tiny_imbalanced", "--tfds_data_dir", data_dir,
             "--num_classes", "4", "--output", str(output)])
    with pytest.raises(ValueError, match=r"argument `tfds_name`. Expected a prepared TFDS"):
        run(["--format", "tfds", "--tfds_name", "not_prepared_here", "--tfds_data_dir", data_dir,
             "--output", str(output)])
    assert not output.exists()
