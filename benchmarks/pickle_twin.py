"""The tutorial's pickle version of this app, for the whole-run benchmark only.

Same data, model, training, FedAdagrad and centralized evaluation as
flower_app; the metadata is the tutorial's dataclass, pickled by the
ClientApp and unpickled and printed in `aggregate_train`. Never used by the
app: `benchmarks.whole_run` packs it into a FAB of its own.
"""

import pickle
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from logging import INFO

from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAdagrad

from flower_app.app import client_app as ours
from flower_app.app import server_app, task
from flower_app.app.settings import Settings


@dataclass
class TrainProcessMetadata:
    """Metadata about the training process (the tutorial's dataclass)."""

    training_time: float
    converged: bool
    training_losses: dict[str, float]


clientapp = ClientApp()


@clientapp.train()
def train(msg: Message, context: Context) -> Message:
    """Train as flower_app does; send the metadata pickled."""
    settings = Settings.from_context(context)
    trainset, _ = ours.partition_of(settings, context)
    net = ours.received_model(msg)
    start = time.perf_counter()
    losses = task.train(
        net,
        trainset,
        settings.local_epochs,
        settings.learning_rate,
        settings.batch_size,
    )
    meta = TrainProcessMetadata(
        training_time=time.perf_counter() - start,
        converged=bool(task.has_converged(losses, settings.convergence_tolerance)),
        training_losses={f"epoch_{i}": loss for i, loss in enumerate(losses, 1)},
    )
    content = RecordDict(
        {
            "arrays": ArrayRecord(net.state_dict()),
            "metrics": MetricRecord(
                {"train_loss": losses[-1], "num-examples": len(trainset)}
            ),
            "train_metadata": ConfigRecord({"meta": pickle.dumps(meta)}),
        }
    )
    return Message(content=content, reply_to=msg)


@clientapp.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate as flower_app does, without metadata."""
    settings = Settings.from_context(context)
    _, testset = ours.partition_of(settings, context)
    loss, accuracy = task.evaluate(ours.received_model(msg), testset)
    metrics = MetricRecord(
        {"eval_loss": loss, "eval_acc": accuracy, "num-examples": len(testset)}
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


class CustomFedAdagrad(FedAdagrad):
    """The tutorial's strategy: unpickle and print every client's metadata."""

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Unpickle and print each reply's metadata, then aggregate as usual."""
        replies = list(replies)
        for reply in replies:
            if reply.has_content():
                payload = reply.content.config_records["train_metadata"]["meta"]
                print(asdict(pickle.loads(payload)))  # type: ignore[arg-type]
        return super().aggregate_train(server_round, replies)


serverapp = ServerApp()


@serverapp.main()
def main(grid: Grid, context: Context) -> None:
    """Run the same FedAdagrad and evaluation as flower_app's ServerApp."""
    settings = Settings.from_context(context)
    testset, net = server_app.centralized_test_set(settings.dataset, settings.seed)
    strategy = CustomFedAdagrad(**settings.fedadagrad_options)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(net.state_dict()),
        num_rounds=settings.num_server_rounds,
        timeout=settings.round_timeout,
        evaluate_fn=lambda _, arrays: server_app.centralized_evaluate(arrays, testset),
    )
    final = result.evaluate_metrics_serverapp[settings.num_server_rounds]
    log(INFO, "Summary: final centralized accuracy %.4f", final["accuracy"])
