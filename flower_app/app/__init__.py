"""The example Flower app: digits, an MLP, and `CustomFedAdagrad`."""
