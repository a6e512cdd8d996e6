"""Which extra of the distribution installs each optional package."""

EXTRAS = {
    "matplotlib": "report",
    "mlflow": "mlflow",
    "tensorboard": "tensorboard",
    "grpc_tools": "codegen",
    "mypy_protobuf": "codegen",
}
"""The extra that installs each optional package, by its import name."""


def missing_extra(err: ModuleNotFoundError) -> str | None:
    """Say in one line which extra installs the missing module, if one does."""
    top = (err.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    return f"{top} is not installed: pip install 'flower-meta-protocol[{extra}]'"
