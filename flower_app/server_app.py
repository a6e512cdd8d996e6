"""ServerApp: runs `CustomFedAdagrad` with centralized evaluation every round."""

from logging import INFO

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.common import log
from flwr.serverapp import Grid, ServerApp
from torch.utils.data import TensorDataset

from flower_app import data, task
from flower_app.settings import Settings
from flower_app.strategy import CustomFedAdagrad

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Train for the configured rounds, then log a summary."""
    settings = Settings.from_context(context)
    test_split = data.load_test_split(settings.dataset)
    testset = data.to_tensors(test_split)
    net = task.Net(testset.tensors[0].shape[1], data.num_classes(test_split))

    strategy = CustomFedAdagrad(
        fraction_train=settings.fraction_train,
        fraction_evaluate=settings.fraction_evaluate,
        eta=settings.server_learning_rate,
        eta_l=settings.learning_rate,
        tau=settings.server_tau,
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(net.state_dict()),
        num_rounds=settings.num_server_rounds,
        evaluate_fn=lambda _, arrays: _evaluate(arrays, testset),
    )

    final = result.evaluate_metrics_serverapp[settings.num_server_rounds]
    last = settings.num_server_rounds
    accepted = strategy.metadata.get(last, {})
    converged = sum(meta.converged for meta in accepted.values())
    log(
        INFO,
        "Summary: %s rounds, final centralized accuracy %.4f (loss %.4f); "
        "last round metadata from %s clients (%s converged, %s rejected)",
        last,
        final["accuracy"],
        final["loss"],
        len(accepted),
        converged,
        len(strategy.rejected.get(last, {})),
    )


def _evaluate(arrays: ArrayRecord, testset: TensorDataset) -> MetricRecord:
    """Evaluate the global model on the centralized test set."""
    net = task.Net.from_state_dict(arrays.to_torch_state_dict())
    loss, accuracy = task.evaluate(net, testset)
    return MetricRecord({"loss": loss, "accuracy": accuracy})
