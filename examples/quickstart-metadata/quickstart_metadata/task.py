"""quickstart_metadata: the model, the data and the training loop (plain PyTorch)."""

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

Loader = DataLoader[tuple[torch.Tensor, ...]]


class Net(nn.Module):
    """A small multilayer perceptron for 8x8 digit images."""

    def __init__(self) -> None:
        """Map 64 pixels through one hidden layer to 10 class logits."""
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class logits for a batch of flattened images."""
        logits: torch.Tensor = self.layers(x)
        return logits


def load_data(
    partition_id: int, num_partitions: int, batch_size: int
) -> tuple[Loader, Loader]:
    """Load this partition of scikit-learn's bundled digits: 80 % train, 20 % test."""
    digits = load_digits()
    features = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    mine = torch.arange(partition_id, len(labels), num_partitions)
    split = int(0.8 * len(mine))
    train = TensorDataset(features[mine[:split]], labels[mine[:split]])
    test = TensorDataset(features[mine[split:]], labels[mine[split:]])
    return DataLoader(train, batch_size=batch_size, shuffle=True), DataLoader(test)


def train(net: Net, trainloader: Loader, epochs: int, lr: float) -> list[float]:
    """Train with SGD; return the mean loss of each epoch."""
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    net.train()
    losses = []
    for _ in range(epochs):
        total = 0.0
        for images, labels in trainloader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(images), labels)
            torch.autograd.backward(loss)
            optimizer.step()
            total += loss.item() * len(labels)
        losses.append(total / len(trainloader.dataset))  # type: ignore[arg-type]
    return losses


@torch.no_grad()
def test(net: Net, testloader: Loader) -> tuple[float, float]:
    """Return the mean loss and the accuracy of `net` on the test data."""
    net.eval()
    loss, correct, count = 0.0, 0, 0
    for images, labels in testloader:
        logits = net(images)
        loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
        correct += int((logits.argmax(dim=1) == labels).sum())
        count += len(labels)
    return loss / count, correct / count
