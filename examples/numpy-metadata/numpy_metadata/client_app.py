"""numpy_metadata: the ClientApp, sending RegressionTrainMetadata with each update."""

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from linreg.v1.linreg_pb2 import RegressionTrainMetadata

from flower_app import MetadataMod, reply_metadata
from numpy_metadata.task import SOLVER, load_data, train

app = ClientApp(mods=[MetadataMod(train=RegressionTrainMetadata, evaluate=None)])


@app.train()
def fit(msg: Message, context: Context) -> Message:
    """Train on this node's data; report the MSE of each epoch."""
    weights = msg.content["arrays"]["w"].numpy()
    x, y = load_data(int(context.node_config["partition-id"]))
    weights, losses = train(
        weights,
        x,
        y,
        int(context.run_config["local-epochs"]),
        float(context.run_config["learning-rate"]),
    )
    meta = reply_metadata(RegressionTrainMetadata)  # typed: mypy checks the fields
    meta.mse.extend(losses)
    meta.examples = len(y)
    meta.weight_norm = float(np.linalg.norm(weights))
    meta.solver = SOLVER
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(weights)}),
            "metrics": MetricRecord({"train_loss": losses[-1], "num-examples": len(y)}),
        }
    )
    return Message(content=content, reply_to=msg)
