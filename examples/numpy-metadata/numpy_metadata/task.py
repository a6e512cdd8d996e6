"""numpy_metadata: each node's data and its gradient-descent training (numpy only)."""

import numpy as np
from numpy.typing import NDArray

FEATURES = 4
SOLVER = "gradient-descent"
"""What `train` does, as the metadata names it."""
TRUE_WEIGHTS = np.array([1.5, -2.0, 0.5, 3.0])
Floats = NDArray[np.float64]


def load_data(partition_id: int, examples: int = 64) -> tuple[Floats, Floats]:
    """Make a node's examples of y = x . TRUE_WEIGHTS + noise, the same every run."""
    rng = np.random.default_rng(partition_id)
    x = rng.normal(size=(examples, FEATURES))
    y = x @ TRUE_WEIGHTS + rng.normal(scale=0.1, size=examples)
    return x, y


def mse(weights: Floats, x: Floats, y: Floats) -> float:
    """Mean squared error of the predictions x . weights."""
    return float(np.mean((x @ weights - y) ** 2))


def train(
    weights: Floats, x: Floats, y: Floats, epochs: int, lr: float
) -> tuple[Floats, list[float]]:
    """Full-batch gradient descent; return the weights and the MSE after each epoch."""
    losses = []
    for _ in range(epochs):
        gradient = 2 * x.T @ (x @ weights - y) / len(y)
        weights = weights - lr * gradient
        losses.append(mse(weights, x, y))
    return weights, losses
