"""ClientApp: trains on its partition and reports `TrainProcessMetadata`."""

import time

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from torch.utils.data import TensorDataset

from flower_app import codec, data, task
from flower_app.settings import Settings
from generated.python.flower_meta.v1.metadata_pb2 import TrainProcessMetadata

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the global model locally; reply with arrays, metrics and metadata."""
    settings = Settings.from_context(context)
    trainset, _ = _partition(settings, context)
    net = _received_model(msg)

    start = time.perf_counter()
    losses = task.train(
        net,
        trainset,
        epochs=settings.local_epochs,
        learning_rate=settings.learning_rate,
        batch_size=settings.batch_size,
    )
    meta = TrainProcessMetadata(
        training_time=time.perf_counter() - start, training_losses=losses
    )
    converged = task.has_converged(losses, settings.convergence_tolerance)
    if converged is not None:
        meta.converged = converged

    content = RecordDict(
        {
            "arrays": ArrayRecord(net.state_dict()),
            "metrics": MetricRecord(
                {"train_loss": losses[-1], "num-examples": len(trainset)}
            ),
            codec.RECORD_KEY: codec.to_config_record(meta, settings.limits),
        }
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the global model on this partition's test split."""
    settings = Settings.from_context(context)
    _, testset = _partition(settings, context)
    net = _received_model(msg)
    loss, accuracy = task.evaluate(net, testset)
    metrics = MetricRecord(
        {"eval_loss": loss, "eval_acc": accuracy, "num-examples": len(testset)}
    )
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)


def _partition(
    settings: Settings, context: Context
) -> tuple[TensorDataset, TensorDataset]:
    """Load this node's partition as named by its node config."""
    source = data.partitions(
        settings.dataset,
        settings.partitioning,
        int(context.node_config["num-partitions"]),
        settings.dirichlet_alpha,
    )
    return data.load_partition(source, int(context.node_config["partition-id"]))


def _received_model(msg: Message) -> task.Net:
    """Rebuild the global model from the arrays the server sent."""
    arrays = msg.content.array_records["arrays"]
    return task.Net.from_state_dict(arrays.to_torch_state_dict())
