"""An in-process Flower simulation: real ClientApps train and their metadata arrives."""

import math

import pytest
from flwr.simulation import run_simulation

from flower_app import server_app
from flower_app.client_app import app as client_app
from flower_app.strategy import CustomFedAdagrad

NODES = 3


def test_metadata_reaches_the_strategy_every_round(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategies: list[CustomFedAdagrad] = []

    class Recorded(CustomFedAdagrad):
        def __init__(self, **kwargs: float) -> None:
            super().__init__(**kwargs)
            strategies.append(self)

    monkeypatch.setattr(server_app, "CustomFedAdagrad", Recorded)
    run_simulation(
        server_app=server_app.app,
        client_app=client_app,
        num_supernodes=NODES,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )

    (strategy,) = strategies
    assert sorted(strategy.metadata) == [1, 2, 3]
    assert all(not rejected for rejected in strategy.rejected.values())
    for by_node in strategy.metadata.values():
        assert len(by_node) == NODES
        for meta in by_node.values():
            assert 0 < meta.training_time < 60
            assert len(meta.training_losses) == 5  # local-epochs in pyproject.toml
            assert all(
                0 < loss < 10 and math.isfinite(loss) for loss in meta.training_losses
            )
            assert meta.HasField("converged")
    last_round = strategy.metadata[3].values()
    first_round = strategy.metadata[1].values()
    mean_final = sum(m.training_losses[-1] for m in last_round) / NODES
    mean_first = sum(m.training_losses[0] for m in first_round) / NODES
    assert mean_final < mean_first
