"""Flower app that reports training metadata with a protobuf schema, not pickle."""
