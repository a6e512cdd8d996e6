"""Local training, evaluation and the convergence criterion."""

import pytest
import torch

from flower_app.app import data, task


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([], None),
        ([0.5], None),
        ([1.0, 0.99], True),
        ([1.0, 0.9], False),
        ([1.0, 1.04], False),  # a rising loss is never converged
        ([0.35, 0.36, 0.37], False),
        ([1.0, 1.0], True),  # flat: no change at all
        ([0.0, 0.0], True),
        ([0.0, 0.1], False),
        ([20.0, 19.0], True),  # exactly the tolerance: 1 / 20 == 0.05
        ([20.0, 20.0000001], False),
        ([20.0, 18.9375], False),  # 1.0625 / 20, just over
    ],
)
def test_convergence_is_a_small_relative_decrease_of_the_last_epoch(
    losses: list[float], expected: bool | None
) -> None:
    assert task.has_converged(losses, tolerance=0.05) is expected


def test_training_lowers_the_loss_and_reports_every_epoch() -> None:
    torch.manual_seed(0)
    train, test = data.load_partition(data.partitions(data.DIGITS, "iid", 2, 0.5), 0)
    net = task.Net(64, 10)
    before, _ = task.evaluate(net, test)
    losses = task.train(net, train, epochs=4, learning_rate=0.1, batch_size=16)
    after, accuracy = task.evaluate(net, test)
    assert len(losses) == 4
    assert losses[-1] < losses[0]
    assert after < before
    assert accuracy > 0.8


def test_state_dict_round_trip_rebuilds_the_same_model() -> None:
    net = task.Net(48, 3)
    rebuilt = task.Net.from_state_dict(net.state_dict())
    x = torch.rand(5, 48)
    torch.testing.assert_close(net(x), rebuilt(x))


def test_an_epochs_loss_is_the_mean_over_its_examples() -> None:
    """With a learning rate of 0 the model stays put: each epoch's loss is the
    model's mean cross-entropy over the whole partition, batches of any size."""
    torch.manual_seed(0)
    train, _ = data.load_partition(data.partitions(data.DIGITS, "iid", 2, 0.5), 0)
    net = task.Net(64, 10)
    features, labels = train.tensors
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(net(features), labels).item()
    losses = task.train(net, train, epochs=2, learning_rate=0.0, batch_size=100)
    assert len(train) % 100 != 0, "the last batch must be smaller"
    assert losses == pytest.approx([expected, expected], rel=1e-5)


def test_a_seed_fixes_the_initial_weights_and_the_batch_order() -> None:
    train, _ = data.load_partition(data.partitions(data.DIGITS, "iid", 2, 0.5), 0)

    def trained(init: int, batches: int | None) -> list[float]:
        net = task.Net.seeded(64, 10, init)
        return task.train(net, train, 2, 0.1, 16, seed=batches)

    first = trained(1, 5)
    assert trained(1, 5) == first  # to the last bit
    assert trained(2, 5) != first  # another init
    assert trained(1, 6) != first  # another batch order
    assert trained(1, None) != first  # torch's own RNG: unseeded
    before = torch.random.get_rng_state()
    task.Net.seeded(64, 10, 1)
    assert torch.equal(torch.random.get_rng_state(), before)  # left untouched
    for a, b in zip(
        task.Net.seeded(64, 10, 3).state_dict().values(),
        task.Net.seeded(64, 10, 3).state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_the_seed_fixes_the_partitions_and_splits() -> None:
    def features(seed: int) -> torch.Tensor:
        source = data.partitions(data.DIGITS, "dirichlet", 3, 0.5, seed)
        return data.load_partition(source, 1, seed)[0].tensors[0]

    assert torch.equal(features(3), features(3))
    assert not torch.equal(features(3)[:10], features(4)[:10])
    assert not torch.equal(
        data.to_tensors(data.load_test_split(data.DIGITS, 3)).tensors[0],
        data.to_tensors(data.load_test_split(data.DIGITS, 4)).tensors[0],
    )
