"""ClientApp: trains as the typed instructions say; the mod sends the metadata."""

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch.utils.data import TensorDataset

from flower_app import (
    MetadataDecodeError,
    Reason,
    metadata_mod,
    read_instructions,
    report,
    type_url_of,
)
from flower_app.app import data, task
from flower_app.app.settings import Settings
from flower_meta.v1.metadata_pb2 import (
    EvaluateInstructions,
    EvaluateProcessMetadata,
    TrainInstructions,
    TrainProcessMetadata,
)

app = ClientApp(mods=[metadata_mod])


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the global model locally; reply with arrays and metrics."""
    todo = read_instructions(TrainInstructions, msg)
    _check_expected(todo.metadata_type_url, type_url_of(TrainProcessMetadata))
    settings = Settings.from_context(context)
    trainset, _ = partition_of(settings, context)
    net = received_model(msg)
    losses = task.train(
        net,
        trainset,
        epochs=todo.local_epochs,
        learning_rate=todo.learning_rate,
        batch_size=todo.batch_size,
        seed=batch_seed(
            settings.seed, int(context.node_config["partition-id"]), _server_round(msg)
        ),
    )
    report(
        training_losses=losses,
        converged=task.has_converged(losses, todo.convergence_tolerance),
    )
    metrics = MetricRecord({"train_loss": losses[-1], "num-examples": len(trainset)})
    content = RecordDict({"arrays": ArrayRecord(net.state_dict()), "metrics": metrics})
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the global model on this partition's test split."""
    todo = read_instructions(EvaluateInstructions, msg)
    _check_expected(todo.metadata_type_url, type_url_of(EvaluateProcessMetadata))
    _, testset = partition_of(Settings.from_context(context), context)
    loss, accuracy = task.evaluate(received_model(msg), testset)
    report(num_examples=len(testset), loss=loss, accuracy=accuracy)
    metrics = MetricRecord(
        {"eval_loss": loss, "eval_acc": accuracy, "num-examples": len(testset)}
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


def _check_expected(expected: str, written: str) -> None:
    """Fail loudly when the server expects metadata this ClientApp cannot write."""
    if expected != written:
        raise MetadataDecodeError(
            Reason.UNSUPPORTED_VERSION,
            f"the server expects {expected!r}, this ClientApp writes {written!r}: "
            "run a ClientApp built from the server's proto/",
        )


def _server_round(msg: Message) -> int:
    """Read the round a train message belongs to from its config (0: none)."""
    found = msg.content.config_records["config"].get("server-round", 0)
    return found if isinstance(found, int) else 0


def batch_seed(seed: int, partition_id: int, server_round: int) -> int:
    """Seed one partition's batch order in one round.

    The run's `seed` fixes it; each partition and round gets its own.
    """
    state = np.random.SeedSequence([seed, partition_id, server_round]).generate_state(1)
    return int(state[0])


def partition_of(
    settings: Settings, context: Context
) -> tuple[TensorDataset, TensorDataset]:
    """Load this node's partition as named by its node config."""
    source = data.partitions(
        settings.dataset,
        settings.partitioning,
        int(context.node_config["num-partitions"]),
        settings.dirichlet_alpha,
        settings.seed,
    )
    partition_id = int(context.node_config["partition-id"])
    return data.load_partition(source, partition_id, settings.seed)


def received_model(msg: Message) -> task.Net:
    """Rebuild the global model from the arrays the server sent."""
    arrays = msg.content.array_records["arrays"]
    return task.Net.from_state_dict(arrays.to_torch_state_dict())
