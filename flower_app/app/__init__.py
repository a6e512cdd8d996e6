"""The example Flower app: digits, an MLP, FedAdagrad behind `MetadataStrategy`."""
