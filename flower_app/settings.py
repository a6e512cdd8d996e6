"""Typed view of the run config in `[tool.flwr.app.config]` of pyproject.toml."""

from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context, UserConfig
from flwr.common.config import get_fused_config_from_dir

APP_DIR = Path(__file__).resolve().parent.parent
"""The Flower app (or unpacked FAB) holding pyproject.toml."""


@dataclass(frozen=True)
class Settings:
    """Every run-config key the app reads, with its Python type."""

    num_server_rounds: int
    fraction_train: float
    fraction_evaluate: float
    local_epochs: int
    learning_rate: float
    server_learning_rate: float
    server_tau: float
    batch_size: int
    partitioning: str
    dirichlet_alpha: float
    convergence_tolerance: float
    dataset: str

    @classmethod
    def from_context(cls, context: Context) -> "Settings":
        """Read the run config; an empty one means pyproject.toml's defaults.

        `flwr run` always fills the run config; the deprecated in-process
        `flwr.simulation.run_simulation` API leaves it empty.
        """
        run_config = context.run_config or get_fused_config_from_dir(APP_DIR, {})
        return cls.from_run_config(run_config)

    @classmethod
    def from_run_config(cls, run_config: UserConfig) -> "Settings":
        """Read and type-check the run config; unknown keys are ignored."""
        return cls(
            num_server_rounds=_integer(run_config, "num-server-rounds"),
            fraction_train=_number(run_config, "fraction-train"),
            fraction_evaluate=_number(run_config, "fraction-evaluate"),
            local_epochs=_integer(run_config, "local-epochs"),
            learning_rate=_number(run_config, "learning-rate"),
            server_learning_rate=_number(run_config, "server-learning-rate"),
            server_tau=_number(run_config, "server-tau"),
            batch_size=_integer(run_config, "batch-size"),
            partitioning=_text(run_config, "partitioning"),
            dirichlet_alpha=_number(run_config, "dirichlet-alpha"),
            convergence_tolerance=_number(run_config, "convergence-tolerance"),
            dataset=_text(run_config, "dataset"),
        )


def _integer(run_config: UserConfig, key: str) -> int:
    value = run_config[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"run config {key!r} must be an integer, got {value!r}")
    return value


def _number(run_config: UserConfig, key: str) -> float:
    value = run_config[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"run config {key!r} must be a number, got {value!r}")
    return float(value)


def _text(run_config: UserConfig, key: str) -> str:
    value = run_config[key]
    if not isinstance(value, str):
        raise TypeError(f"run config {key!r} must be a string, got {value!r}")
    return value
