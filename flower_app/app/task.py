"""Model, local training and evaluation (plain PyTorch, no Flower, no metadata)."""

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

HIDDEN_UNITS = 64


class Net(nn.Module):
    """A small multilayer perceptron over flattened images."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        """Map `num_features` inputs through one hidden layer to class logits."""
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(num_features, HIDDEN_UNITS),
            nn.ReLU(),
            nn.Linear(HIDDEN_UNITS, num_classes),
        )

    @classmethod
    def seeded(cls, num_features: int, num_classes: int, seed: int) -> "Net":
        """Build a `Net` whose initial weights `seed` fixes (torch's RNG untouched)."""
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            return cls(num_features, num_classes)

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> "Net":
        """Build a `Net` shaped by `state` and load it."""
        hidden, num_features = state["layers.0.weight"].shape
        num_classes, _ = state["layers.2.weight"].shape
        if hidden != HIDDEN_UNITS:
            raise ValueError(f"expected {HIDDEN_UNITS} hidden units, got {hidden}")
        net = cls(num_features, num_classes)
        net.load_state_dict(state)
        return net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of flattened images."""
        logits: torch.Tensor = self.layers(x)
        return logits


def train(
    net: Net,
    data: TensorDataset,
    epochs: int,
    learning_rate: float,
    batch_size: int,
    seed: int | None = None,
) -> list[float]:
    """Train with SGD; return the mean cross-entropy of each epoch.

    `seed` fixes the batch order (None: torch's global RNG shuffles).
    """
    order = None if seed is None else torch.Generator().manual_seed(seed)
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=order)
    optimizer = torch.optim.SGD(net.parameters(), lr=learning_rate, momentum=0.9)
    net.train()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for features, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(features), labels)
            torch.autograd.backward(loss)
            optimizer.step()
            total += loss.item() * len(labels)
        losses.append(total / len(data))
    return losses


@torch.no_grad()
def evaluate(net: Net, data: TensorDataset) -> tuple[float, float]:
    """Return (mean cross-entropy, accuracy) of `net` on `data`."""
    net.eval()
    features, labels = data.tensors
    logits = net(features)
    loss = nn.functional.cross_entropy(logits, labels).item()
    accuracy = (logits.argmax(dim=1) == labels).float().mean().item()
    return loss, accuracy


def has_converged(losses: list[float], tolerance: float) -> bool | None:
    """Whether the last epoch lowered the loss by at most `tolerance`, relatively.

    Converged: L[n] <= L[n-1] and (L[n-1] - L[n]) / L[n-1] <= tolerance; a
    loss that rose is not converged, however little. None when fewer than
    two epochs ran: convergence cannot be assessed.
    """
    if len(losses) < 2:
        return None
    previous, last = losses[-2], losses[-1]
    if last > previous:
        return False
    if previous == 0:
        return True  # 0 -> 0
    return (previous - last) / previous <= tolerance
