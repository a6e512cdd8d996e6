"""numpy_metadata: linear regression in numpy, with typed training metadata."""
