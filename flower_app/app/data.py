"""Federated image-classification data: offline digits by default, any Hub name."""

from functools import cache

import datasets
import numpy as np
import torch
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, load_dataset
from flwr_datasets import FederatedDataset
from flwr_datasets.partitioner import DirichletPartitioner, IidPartitioner, Partitioner
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

datasets.disable_progress_bars()  # a run's log is for the run, not for progress bars

DIGITS = "digits"
"""Dataset name of scikit-learn's bundled 8x8 digits: no network needed."""
SEED = 42
"""The run config's `seed` unless it says otherwise: partitions and splits."""
TEST_FRACTION = 0.2
"""Share held out: digits' centralized test set, and each partition's test split."""


def make_partitioner(
    partitioning: str, num_partitions: int, dirichlet_alpha: float, seed: int = SEED
) -> Partitioner:
    """Build the flwr-datasets partitioner named by the run config."""
    if partitioning == "iid":
        return IidPartitioner(num_partitions=num_partitions)
    if partitioning == "dirichlet":
        return DirichletPartitioner(
            num_partitions=num_partitions,
            partition_by="label",
            alpha=dirichlet_alpha,
            seed=seed,
        )
    raise ValueError(f"partitioning must be 'iid' or 'dirichlet', got {partitioning!r}")


@cache
def digits_splits(seed: int = SEED) -> DatasetDict:
    """Load the bundled digits as 8x8 grayscale images, split train/test."""
    digits = load_digits()
    pixels = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    features = Features({"image": Image(), "label": ClassLabel(num_classes=10)})
    full = Dataset.from_dict(
        {"image": list(pixels), "label": digits.target.tolist()}, features=features
    )
    return full.train_test_split(
        test_size=TEST_FRACTION, seed=seed, stratify_by_column="label"
    )


@cache
def partitions(
    dataset: str,
    partitioning: str,
    num_partitions: int,
    dirichlet_alpha: float,
    seed: int = SEED,
) -> Partitioner | FederatedDataset:
    """Partition `dataset`'s train split; digits in memory, other names via the Hub."""
    partitioner = make_partitioner(partitioning, num_partitions, dirichlet_alpha, seed)
    if dataset == DIGITS:
        partitioner.dataset = digits_splits(seed)["train"]
        return partitioner
    return FederatedDataset(dataset=dataset, partitioners={"train": partitioner})


def load_partition(
    source: Partitioner | FederatedDataset, partition_id: int, seed: int = SEED
) -> tuple[TensorDataset, TensorDataset]:
    """Return one partition's train and test tensors."""
    partition = source.load_partition(partition_id)
    splits = partition.train_test_split(test_size=TEST_FRACTION, seed=seed)
    return to_tensors(splits["train"]), to_tensors(splits["test"])


def load_test_split(dataset: str, seed: int = SEED) -> Dataset:
    """Load the centralized test set the ServerApp evaluates the global model on."""
    if dataset == DIGITS:
        return digits_splits(seed)["test"]
    test = load_dataset(dataset, split="test")
    assert isinstance(test, Dataset)
    return test


def to_tensors(split: Dataset) -> TensorDataset:
    """Flatten images to float features in [0, 1] next to integer labels."""
    image_key, label_key = _image_and_label_keys(split)
    arrays = split.with_format("numpy")
    images = np.asarray(arrays[image_key], dtype=np.float32) / 255.0
    features = torch.from_numpy(images.reshape(len(split), -1))
    labels = torch.from_numpy(np.asarray(arrays[label_key], dtype=np.int64))
    return TensorDataset(features, labels)


def num_classes(split: Dataset) -> int:
    """Count the classes of the split's label column."""
    _, label_key = _image_and_label_keys(split)
    return int(split.features[label_key].num_classes)


def _image_and_label_keys(split: Dataset) -> tuple[str, str]:
    """Find the image column and the class-label column by their feature types."""
    kinds = split.features.items()
    images = [key for key, feature in kinds if isinstance(feature, Image)]
    labels = [key for key, feature in kinds if isinstance(feature, ClassLabel)]
    if not images or not labels:
        raise ValueError(
            f"need an Image and a ClassLabel column, got {dict(split.features)}"
        )
    return images[0], labels[0]
