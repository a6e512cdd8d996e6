"""`MetadataStrategy` in front of every strategy `flwr.serverapp.strategy` exports.

Each runs a real in-process simulation: the example ClientApp on 2 nodes, 2
rounds, the strategy wrapped as a user writes `MetadataStrategy(FedProx(...))`;
each DP wrapper both outside and inside the metadata wrapper. A tap on each
side of the stack records what the strategy under the wrappers aggregated
and what the whole stack returned, so the DP noise is measured, not assumed.
"""

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import Mod
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp import strategy as strategies
from flwr.serverapp.strategy import (
    Bulyan,
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    FedXgbBagging,
    FedXgbCyclic,
    FedYogi,
    Krum,
    MultiKrum,
    QFedAvg,
    Strategy,
)
from flwr.simulation import run_simulation

from flower_app.app import client_app, task
from flower_app.app.settings import Settings, pyproject_run_config
from flower_app.client.mod import metadata_mod
from flower_app.protocol import codec
from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog, read_log
from flower_app.server.strategy import MetadataOptions, MetadataStrategy
from flower_meta.v1.metadata_pb2 import EvaluateInstructions

pytestmark = pytest.mark.e2e
SETTINGS = Settings.from_run_config(pyproject_run_config())
NODES = 3
"""Bulyan needs 4 f + 3 replies: 3 with no malicious node."""
NOISE, CLIP = 0.5, 10.0
"""The DP wrappers' noise multiplier and (initial) clipping norm."""


class Tap(Strategy):
    """Delegate to `strategy`; keep a copy of every round's aggregated arrays."""

    def __init__(self, strategy: Strategy) -> None:
        self.strategy = strategy
        self.aggregated: dict[int, list[np.ndarray]] = {}
        self.noise_std: dict[int, float] = {}
        """Gaussian noise deviation a DP wrapper below used in each round."""

    def __getattr__(self, name: str) -> Any:  # weighted_by_key, for DP wrappers
        return getattr(self.strategy, name)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        arrays, metrics = self.strategy.aggregate_train(server_round, replies)
        dp = _dp_below(self.strategy)
        if dp is not None:  # the Gaussian mechanism: multiplier * norm / clients
            self.noise_std[server_round] = (
                dp.noise_multiplier * dp.clipping_norm / dp.num_sampled_clients
            )
        if arrays is not None:
            self.aggregated[server_round] = [
                a.copy() for a in arrays.to_numpy_ndarrays()
            ]
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.strategy.summary()


def _dp_below(strategy: Strategy) -> Any:
    """The DP wrapper in `strategy`'s chain of wrapped strategies, if any."""
    seen: Any = strategy
    while seen is not None and not hasattr(seen, "noise_multiplier"):
        seen = getattr(seen, "strategy", None)
    return seen


Wrap = Callable[[Strategy], Strategy]


@dataclass(frozen=True)
class Case:
    """One strategy stack: the base strategy, how it is wrapped, the client."""

    base: Callable[[], Strategy]
    stack: Callable[[Strategy, Wrap], Strategy]
    """Build the whole stack from the base and the metadata wrapper."""
    client_mod: Mod | None = None
    sampled: int = NODES
    """Nodes sampled a stage (FedXgbCyclic asks one at a time)."""


def _alone(base: Strategy, wrap: Wrap) -> Strategy:
    return wrap(base)


def _dp(kind: Any, **kwargs: Any) -> dict[str, Callable[[Strategy, Wrap], Strategy]]:
    """A DP wrapper outside the metadata wrapper, and inside it."""
    return {
        "outside": lambda base, wrap: kind(wrap(base), NOISE, **kwargs),
        "inside": lambda base, wrap: wrap(kind(base, NOISE, **kwargs)),
    }


FIXED = {"clipping_norm": CLIP, "num_sampled_clients": NODES}
ADAPTIVE = {
    "num_sampled_clients": NODES,
    "initial_clipping_norm": CLIP,
    "clipped_count_stddev": 1.0,  # Flower's default (NODES / 20) is too low for NOISE
}
CASES: dict[str, Case] = {
    "FedAvg": Case(FedAvg, _alone),
    "FedProx": Case(lambda: FedProx(proximal_mu=0.1), _alone),
    "FedAdam": Case(FedAdam, _alone),
    "FedYogi": Case(FedYogi, _alone),
    "FedAdagrad": Case(FedAdagrad, _alone),
    "FedAvgM": Case(lambda: FedAvgM(server_momentum=0.9), _alone),
    "FedMedian": Case(FedMedian, _alone),
    "FedTrimmedAvg": Case(lambda: FedTrimmedAvg(beta=0.0), _alone),
    "Krum": Case(Krum, _alone),
    "MultiKrum": Case(lambda: MultiKrum(num_nodes_to_select=2), _alone),
    "Bulyan": Case(Bulyan, _alone),
    "QFedAvg": Case(lambda: QFedAvg(client_learning_rate=0.1), _alone),
    "FedXgbCyclic": Case(FedXgbCyclic, _alone, sampled=1),
    **{
        f"DifferentialPrivacyServerSideFixedClipping-{side}": Case(FedAvg, stack)
        for side, stack in _dp(
            DifferentialPrivacyServerSideFixedClipping, **FIXED
        ).items()
    },
    **{
        f"DifferentialPrivacyClientSideFixedClipping-{side}": Case(
            FedAvg, stack, client_mod=fixedclipping_mod
        )
        for side, stack in _dp(
            DifferentialPrivacyClientSideFixedClipping, **FIXED
        ).items()
    },
    **{
        f"DifferentialPrivacyServerSideAdaptiveClipping-{side}": Case(FedAvg, stack)
        for side, stack in _dp(
            DifferentialPrivacyServerSideAdaptiveClipping, **ADAPTIVE
        ).items()
    },
    **{
        f"DifferentialPrivacyClientSideAdaptiveClipping-{side}": Case(
            FedAvg, stack, client_mod=adaptiveclipping_mod
        )
        for side, stack in _dp(
            DifferentialPrivacyClientSideAdaptiveClipping, **ADAPTIVE
        ).items()
    },
}
NOT_RUN = {
    FedXgbBagging: "aggregates XGBoost trees: the example app trains a PyTorch MLP",
}


def test_every_exported_strategy_has_a_case() -> None:
    exported = {
        kind
        for _, kind in inspect.getmembers(strategies, inspect.isclass)
        if issubclass(kind, Strategy) and kind is not Strategy
    }
    covered = {name.split("-")[0] for name in CASES} | {k.__name__ for k in NOT_RUN}
    assert {kind.__name__ for kind in exported} == covered


def _every_node(strategy: Strategy, sampled: int) -> Strategy:
    """Sample only once every node is connected, `sampled` of them a stage.

    Flower counts the connected nodes before it waits for enough of them;
    on a busy machine a simulated node can connect just after round 1's
    count, and that round would sample one node fewer.
    """
    vars(strategy).update(min_available_nodes=NODES)
    if sampled == NODES:
        vars(strategy).update(min_train_nodes=NODES, min_evaluate_nodes=NODES)
    return strategy


def _server(case: Case, folder: Path, out: dict[str, Any]) -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        base = Tap(_every_node(case.base(), case.sampled))
        metadata_log = MetadataLog(folder, types=MetadataOptions().types)

        def wrap(inner: Strategy) -> Strategy:
            wrapper = MetadataStrategy(inner, metadata_log=metadata_log)
            out["wrapper"] = wrapper
            return wrapper

        whole = Tap(case.stack(base, wrap))
        evaluate = EvaluateInstructions(metadata_type_url=codec.EVALUATE_TYPE_URL)
        out["initial"] = ArrayRecord(task.Net(64, 10).state_dict())
        out["result"] = whole.start(
            grid=grid,
            initial_arrays=out["initial"],
            num_rounds=2,
            train_config=codec.to_config_record(SETTINGS.train_instructions),
            evaluate_config=codec.to_config_record(evaluate),
        )
        metadata_log.close()
        out["base"], out["whole"] = base, whole

    return app


def _client(mod: Mod | None) -> ClientApp:
    if mod is None:
        return client_app.app
    app = ClientApp(mods=[metadata_mod])
    app.train(mods=[mod])(client_app.train)  # Flower's DP mods: train only
    app.evaluate()(client_app.evaluate)
    return app


@pytest.mark.parametrize("name", list(CASES))
def test_the_wrapper_runs_in_front_of(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    out: dict[str, Any] = {}
    run_simulation(
        server_app=_server(case, tmp_path, out),
        client_app=_client(case.client_mod),
        num_supernodes=NODES,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
    )
    wrapper = out["wrapper"]
    for server_round in (1, 2):
        assert wrapper.reports[server_round].counts() == (
            f"{case.sampled} accepted, 0 rejected, 0 failed"
        )
        assert (
            wrapper.evaluations[server_round].counts()
            == f"{case.sampled} accepted, 0 rejected, 0 failed"
        )
    initial, final = out["initial"], out["result"].arrays
    assert all(
        not np.array_equal(final[k].numpy(), initial[k].numpy()) for k in initial
    ), "the global model did not change"
    outcomes = sorted(
        str(r.WhichOneof("outcome")) for r in read_log(tmp_path / BINARY_LOG)
    )
    assert outcomes == sorted(["accepted", "evaluated"] * 2 * case.sampled)

    base, whole = out["base"].aggregated, out["whole"].aggregated
    assert sorted(base) == sorted(whole) == [1, 2]
    for server_round in (1, 2):
        noise = np.concatenate(
            [
                (w - b).ravel()
                for w, b in zip(whole[server_round], base[server_round], strict=True)
            ]
        )
        if "DifferentialPrivacy" not in name:
            assert not noise.any(), "a strategy without DP added something"
            continue
        expected = out["whole"].noise_std[server_round]
        if "Fixed" in name:
            assert expected == pytest.approx(NOISE * CLIP / NODES)
        assert noise.std() == pytest.approx(expected, rel=0.1)
        assert abs(noise.mean()) < 0.1 * expected
