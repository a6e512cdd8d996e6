"""quickstart_metadata: Flower's PyTorch quickstart, plus typed metadata."""
