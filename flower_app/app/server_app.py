"""ServerApp: FedAdagrad behind `MetadataStrategy`, evaluated centrally each round."""

import os
from collections.abc import Iterable
from logging import INFO

from flwr.app import ArrayRecord, Context, Message, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdagrad
from torch.utils.data import TensorDataset

from flower_app import (
    MetadataOptions,
    MetadataRun,
    Policy,
    instructions_config,
    type_url_of,
)
from flower_app.app import data, task
from flower_app.app.settings import RunConfigError, Settings, pyproject_run_config
from flower_meta.v1.metadata_pb2 import EvaluateInstructions, EvaluateProcessMetadata

# Ray, which runs the simulated SuperNodes in this process, otherwise warns at
# start that a future version changes how it sets GPU variables: with no
# GPU here, opting in now changes nothing and keeps the log quiet.
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Train for the configured rounds, keep every metadata record, summarise.

    A run-config mistake stops the run before round 1, and before its run
    folder exists: `RunConfigError` names the key, and Flower ends the run
    as `finished:failed` (`flwr run --stream` still exits 0 in Flower 1.42:
    it streams the log, whatever the run's status).
    """
    if not context.run_config:  # the deprecated run_simulation gives none
        context.run_config = pyproject_run_config()
    try:
        settings = Settings.from_context(context)
        options = metadata_options(settings)
    except ValueError as err:
        raise RunConfigError(f"{err}; the run stops before round 1") from None
    log(
        INFO,
        "Dataset %r, %s partitioning%s",
        settings.dataset,
        settings.partitioning,
        f" (alpha {settings.dirichlet_alpha:g})"
        if settings.partitioning == "dirichlet"
        else "",
    )
    testset, net = centralized_test_set(settings.dataset, settings.seed)
    evaluate_instructions = EvaluateInstructions(
        metadata_type_url=type_url_of(EvaluateProcessMetadata)
    )
    try:  # the library's own keys: output-dir, report, trackers, ...
        run = MetadataRun.from_context(context, options)
    except (TypeError, ValueError) as err:  # before anything is written
        raise RunConfigError(f"{err}; the run stops before round 1") from None
    with run:  # closing, it logs the run's summary
        strategy = run.wrap(OrderedFedAdagrad(**settings.fedadagrad_options))
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(net.state_dict()),
            num_rounds=settings.num_server_rounds,
            timeout=settings.round_timeout,
            train_config=instructions_config(settings.train_instructions),
            evaluate_config=instructions_config(evaluate_instructions),
            evaluate_fn=lambda _, arrays: centralized_evaluate(arrays, testset),
        )


def metadata_options(settings: Settings) -> MetadataOptions:
    """How the strategy reads, uses and shows metadata, from the run config."""
    choices = [policy.value for policy in Policy]
    if settings.aggregation not in choices:
        raise ValueError(
            f"run config 'aggregation' must be one of {choices}, "
            f"got {settings.aggregation!r}"
        )
    return MetadataOptions(
        limits=settings.limits,
        aggregation=Policy(settings.aggregation),
        downweight_factor=settings.downweight_factor,
        straggler_factor=settings.straggler_factor,
        client_log_cap=settings.client_log_cap,
    )


def centralized_test_set(dataset: str, seed: int) -> tuple[TensorDataset, task.Net]:
    """Load the server's test set, and a fresh model shaped for it, `seed` its init."""
    log(INFO, "Preparing the centralized test set of %r ...", dataset)
    test_split = data.load_test_split(dataset, seed)
    testset = data.to_tensors(test_split)
    log(INFO, "... %s test examples ready", len(testset))
    shape = testset.tensors[0].shape[1], data.num_classes(test_split)
    return testset, task.Net.seeded(*shape, seed)


class OrderedFedAdagrad(FedAdagrad):
    """FedAdagrad summing the replies in an order their content fixes.

    Replies arrive as nodes finish, and a sum of floats depends on its
    order: in content order, two runs with one seed aggregate the same
    replies alike, to the last bit.
    """

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Aggregate as FedAdagrad does, the replies sorted by their metrics."""
        return super().aggregate_train(server_round, sorted(replies, key=_by_metrics))


def _by_metrics(reply: Message) -> str:
    """Order replies by what they report (e.g. train_loss, num-examples)."""
    records = reply.content.metric_records
    return repr(sorted((key, sorted(found.items())) for key, found in records.items()))


def centralized_evaluate(arrays: ArrayRecord, testset: TensorDataset) -> MetricRecord:
    """Evaluate the global model on the centralized test set."""
    net = task.Net.from_state_dict(arrays.to_torch_state_dict())
    loss, accuracy = task.evaluate(net, testset)
    return MetricRecord({"loss": loss, "accuracy": accuracy})
