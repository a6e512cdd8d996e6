"""numpy_metadata: FedAvg behind the run's metadata log, report and trackers."""

import numpy as np
from flwr.app import Array, ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from linreg.v1.linreg_pb2 import RegressionTrainMetadata

from flower_app import MetadataOptions, MetadataRun
from numpy_metadata.task import FEATURES

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run FedAvg for the configured rounds, training only."""
    options = MetadataOptions(train_type=RegressionTrainMetadata, evaluate_type=None)
    with MetadataRun.from_context(context, options) as run:
        strategy = run.wrap(FedAvg(fraction_evaluate=0.0))
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord({"w": Array(np.zeros(FEATURES))}),
            num_rounds=int(context.run_config["num-server-rounds"]),
        )
