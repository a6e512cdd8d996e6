"""Data: offline digits partitions, and the Hub-name path on a dataset on disk."""

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Image

from flower_app.app import data


def test_iid_partitions_split_the_digits_train_set_without_overlap() -> None:
    source = data.partitions(data.DIGITS, "iid", 10, 0.5)
    sizes = [sum(map(len, data.load_partition(source, pid))) for pid in range(10)]
    assert sum(sizes) == len(data.digits_splits()["train"]) == 1437
    assert max(sizes) - min(sizes) <= 1
    assert len(data.load_test_split(data.DIGITS)) == 360


def test_dirichlet_partitions_are_label_skewed() -> None:
    def label_shares(partitioning: str) -> torch.Tensor:
        source = data.partitions(data.DIGITS, partitioning, 10, 0.3)
        train, _ = data.load_partition(source, 0)
        counts = train.tensors[1].bincount(minlength=10).float()
        return counts / counts.sum()

    assert label_shares("dirichlet").max() > 2 * label_shares("iid").max()


def test_digits_tensors_are_flat_unit_range_images() -> None:
    train, test = data.load_partition(data.partitions(data.DIGITS, "iid", 4, 0.5), 1)
    features, labels = train.tensors
    assert features.shape[1] == 64
    assert features.dtype == torch.float32
    assert features.min() >= 0.0
    assert features.max() <= 1.0
    assert set(labels.tolist()) <= set(range(10))
    assert len(test) > 0


def test_unknown_partitioning_is_refused() -> None:
    with pytest.raises(ValueError, match="'iid' or 'dirichlet'"):
        data.make_partitioner("shards", 10, 0.5)


def _write_tiny_image_dataset(root: Path) -> None:
    """A CIFAR-like dataset (RGB images, ClassLabel) as parquet files on disk."""
    rng = np.random.default_rng(0)
    features = Features({"img": Image(), "label": ClassLabel(names=["a", "b", "c"])})
    for split, size in (("train", 60), ("test", 15)):
        images = list(rng.integers(0, 256, size=(size, 4, 4, 3), dtype=np.uint8))
        labels = rng.integers(0, 3, size=size).tolist()
        table = Dataset.from_dict({"img": images, "label": labels}, features=features)
        table.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))


def test_named_dataset_goes_through_federated_dataset(tmp_path: Path) -> None:
    _write_tiny_image_dataset(tmp_path)
    name = str(tmp_path)

    source = data.partitions(name, "iid", 3, 0.5)
    train, test = data.load_partition(source, 2)
    assert len(train) + len(test) == 20
    assert train.tensors[0].shape[1] == 4 * 4 * 3
    assert float(train.tensors[0].max()) <= 1.0

    test_split = data.load_test_split(name)
    assert len(test_split) == 15
    assert data.num_classes(test_split) == 3
