"""The wire contract in Python: codec, rules, canonical JSON and the metadata log."""
