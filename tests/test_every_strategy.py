"""The metadata pipeline on every Flower strategy that aggregates train replies.

Each runs a real in-process simulation: the example ClientApp on 2 nodes, 2
rounds, the strategy with `MetadataStrategy` in front, exactly as a user
writes `class MetadataFedProx(MetadataStrategy, FedProx): ...`.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import (
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedProx,
    FedYogi,
    Result,
)
from flwr.simulation import run_simulation

from flower_app.app import task
from flower_app.app.client_app import app as client_app
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from flower_meta.v1.metadata_pb2 import EvaluateInstructions

pytestmark = pytest.mark.e2e
SETTINGS = Settings.from_run_config(pyproject_run_config())
STRATEGIES: list[tuple[type[FedAvg], dict[str, Any]]] = [
    (FedAvg, {}),
    (FedProx, {"proximal_mu": 0.1}),
    (FedAdam, {}),
    (FedYogi, {}),
    (FedAdagrad, {}),
    (FedAvgM, {"server_momentum": 0.9}),
]


def _server(
    kind: type[FedAvg], kwargs: dict[str, Any], folder: Path, out: list[Any]
) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        with_metadata = type(f"Metadata{kind.__name__}", (MetadataStrategy, kind), {})
        strategy = with_metadata(
            metadata=MetadataOptions(),
            metadata_log=MetadataLog(folder, types=MetadataOptions().types),
            min_train_nodes=2,
            min_evaluate_nodes=2,
            min_available_nodes=2,
            **kwargs,
        )
        initial = ArrayRecord(task.Net(64, 10).state_dict())
        evaluate = EvaluateInstructions(metadata_type_url=codec.EVALUATE_TYPE_URL)
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=2,
            train_config=codec.to_config_record(SETTINGS.train_instructions),
            evaluate_config=codec.to_config_record(evaluate),
        )
        strategy.metadata_log.close()
        out.extend([strategy, result, initial])

    return app


@pytest.mark.parametrize(
    ("kind", "kwargs"), STRATEGIES, ids=lambda k: getattr(k, "__name__", "")
)
def test_the_pipeline_runs_on(
    kind: type[FedAvg], kwargs: dict[str, Any], tmp_path: Path
) -> None:
    out: list[Any] = []
    run_simulation(
        server_app=_server(kind, kwargs, tmp_path, out),
        client_app=client_app,
        num_supernodes=2,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    strategy, result, initial = out
    assert isinstance(strategy, kind)
    assert isinstance(strategy, MetadataStrategy)
    assert isinstance(result, Result)
    for server_round in (1, 2):
        assert (
            strategy.reports[server_round].counts()
            == "2 accepted, 0 rejected, 0 failed"
        )
        assert (
            strategy.evaluations[server_round].counts()
            == "2 accepted, 0 rejected, 0 failed"
        )
    moved = [
        not np.array_equal(result.arrays[name].numpy(), initial[name].numpy())
        for name in initial
    ]
    assert all(moved), "the global model did not change"
    outcomes = [str(r.WhichOneof("outcome")) for r in read_log(tmp_path / BINARY_LOG)]
    assert sorted(outcomes) == ["accepted"] * 4 + ["evaluated"] * 4
