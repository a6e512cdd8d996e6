"""Run config: typed reads, defaults, and each key reaching where it is used."""

import dataclasses
import math

import pytest
from flwr.app import Context, RecordDict

from flower_app.app.server_app import metadata_options
from flower_app.app.settings import RULES, RunConfigError, Settings
from flower_app.protocol.rules import Limits
from flower_app.server.aggregation import Policy
from flower_meta.v1.metadata_pb2 import TrainInstructions


def _context(run_config: dict[str, int | float | str]) -> Context:
    return Context(
        run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config=run_config
    )


DEFAULTS = Settings.from_context(_context({}))


def _config(**changes: object) -> dict[str, int | float | str]:
    values = dataclasses.asdict(DEFAULTS) | changes
    return {name.replace("_", "-"): value for name, value in values.items()}


def test_empty_run_config_means_pyproject_defaults() -> None:
    assert DEFAULTS.num_server_rounds == 3
    assert DEFAULTS.dataset == "digits"
    assert DEFAULTS.partitioning == "iid"
    assert isinstance(DEFAULTS.learning_rate, float)


def test_given_run_config_wins_and_integers_count_as_floats() -> None:
    settings = Settings.from_context(
        _context(_config(learning_rate=1, num_server_rounds=7))
    )
    assert settings.learning_rate == 1.0
    assert isinstance(settings.learning_rate, float)
    assert settings.num_server_rounds == 7


DISTINCT = Settings.from_run_config(
    _config(
        fraction_train=0.7,
        fraction_evaluate=0.3,
        min_nodes=4,
        server_learning_rate=0.25,
        learning_rate=0.05,
        server_tau=0.125,
        local_epochs=6,
        batch_size=8,
        convergence_tolerance=0.02,
        max_payload_bytes=1000,
        max_epochs=64,
        aggregation="downweight",
        downweight_factor=0.75,
        straggler_factor=3.0,
        client_log_cap=4,
    )
)


def test_every_strategy_option_reaches_fedadagrad_under_its_name() -> None:
    assert DISTINCT.fedadagrad_options == {
        "fraction_train": 0.7,
        "fraction_evaluate": 0.3,
        "min_train_nodes": 4,
        "min_evaluate_nodes": 4,
        "min_available_nodes": 4,
        "eta": 0.25,
        "eta_l": 0.05,
        "tau": 0.125,
    }


def test_every_instruction_reaches_the_clients() -> None:
    assert DISTINCT.train_instructions == TrainInstructions(
        local_epochs=6,
        learning_rate=0.05,
        batch_size=8,
        convergence_tolerance=0.02,
        metadata_type_url="type.googleapis.com/flower_meta.v1.TrainProcessMetadata",
    )


def test_every_metadata_option_reaches_the_strategy() -> None:
    options = metadata_options(DISTINCT)
    assert options.limits == Limits(
        max_payload_bytes=1000, max_epochs=64, expected_epochs=6
    )
    assert options.aggregation is Policy.DOWNWEIGHT
    assert options.downweight_factor == 0.75
    assert options.straggler_factor == 3.0
    assert options.client_log_cap == 4


def test_an_unknown_aggregation_is_refused_naming_the_choices() -> None:
    settings = dataclasses.replace(DEFAULTS, aggregation="median")
    with pytest.raises(
        ValueError, match=r"one of \['all', 'converged-only', 'downweight'\]"
    ):
        metadata_options(settings)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("num-server-rounds", 2.5, "'num-server-rounds' must be int, got 2.5"),
        ("local-epochs", True, "'local-epochs' must be int, got True"),
        ("dataset", 3, "'dataset' must be str, got 3"),
        ("seed", 1.5, "'seed' must be int, got 1.5"),
    ],
)
def test_wrong_types_are_refused(key: str, value: object, message: str) -> None:
    config = _config()
    config[key] = value  # type: ignore[assignment]
    with pytest.raises(RunConfigError, match=message):
        Settings.from_run_config(config)


def test_missing_key_names_the_key() -> None:
    with pytest.raises(RunConfigError, match="run config misses 'num-server-rounds'"):
        Settings.from_run_config({"dataset": "digits"})


# Each range key at its edges: the last value refused, the first accepted.
EDGES = [
    ("num-server-rounds", 0, 1, ">= 1"),
    ("fraction-train", 0.0, 1e-9, "in (0, 1]"),
    ("fraction-train", 1.0000001, 1.0, "in (0, 1]"),
    ("fraction-evaluate", -0.01, 0.0, "in [0, 1]"),
    ("fraction-evaluate", 1.01, 1.0, "in [0, 1]"),
    ("local-epochs", 0, 1, ">= 1"),
    ("learning-rate", 0.0, 1e-6, "> 0"),
    ("learning-rate", math.inf, 10.0, "> 0"),
    ("server-learning-rate", -0.1, 0.1, "> 0"),
    ("server-tau", -1e-9, 0.0, ">= 0"),
    ("batch-size", 0, 1, ">= 1"),
    ("partitioning", "skewed", "dirichlet", "'iid' or 'dirichlet'"),
    ("dirichlet-alpha", 0.0, 0.01, "> 0"),
    ("dirichlet-alpha", math.nan, 0.5, "> 0"),
    ("convergence-tolerance", -0.01, 0.0, ">= 0"),
    ("dataset", " ", "digits", "a dataset name"),
    ("seed", -1, 0, ">= 0"),
    ("min-nodes", 0, 1, ">= 1"),
    ("round-timeout", 0.0, 0.5, "> 0 (seconds)"),
    ("max-payload-bytes", -5, 1, ">= 1 (bytes)"),
    ("max-epochs", 0, 1, ">= 1"),
    ("downweight-factor", 0.0, 1.0, "in (0, 1]"),
    ("downweight-factor", 1.5, 0.01, "in (0, 1]"),
    ("straggler-factor", 0.0, 1.0, "> 0"),
    ("client-log-cap", -1, 0, ">= 0"),
]


@pytest.mark.parametrize(("key", "refused", "accepted", "allowed"), EDGES)
def test_each_key_is_checked_at_its_edges(
    key: str, refused: object, accepted: object, allowed: str
) -> None:
    config = _config()
    config[key] = refused  # type: ignore[assignment]
    with pytest.raises(RunConfigError) as error:
        Settings.from_run_config(config)
    assert str(error.value) == f"run config {key!r} must be {allowed}, got {refused!r}"
    config[key] = accepted  # type: ignore[assignment]
    settings = Settings.from_run_config(config)
    assert settings.run_config[key] == accepted


def test_every_ranged_key_has_its_edges_tested() -> None:
    assert {key for key, *_ in EDGES} == set(RULES)


def test_settings_cannot_change_once_read() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.num_server_rounds = 4  # type: ignore[misc]
