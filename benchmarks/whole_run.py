"""The whole run: default `flwr run .` against the tutorial's pickle twin.

Both apps run the same config (pyproject.toml's defaults, 10 SuperNodes) on
one managed local SuperLink in a private FLWR_HOME, alternating, so that
machine noise hits both alike. Reports each run's wall time and final
centralized accuracy, and the wall-time ratio, run pair by run pair
(target <= 1.05).

Each app runs from a folder holding just its FAB's files: flwr 1.42 walks
every file under the app folder to build the FAB, so a checkout with its
.venv inside would add seconds that have nothing to do with the app; that
cost is measured on its own, as "FAB build".

    python -m benchmarks.whole_run [--runs N] [--quick] [--force] [--output DIR]
"""

import re
import shutil
import tempfile
import time
import tomllib
import zipfile
from io import BytesIO
from pathlib import Path

import tomli_w
from flwr.cli.build import build_fab_from_disk
from rich.progress import track

from benchmarks.common import ROOT, Spread, parser, publish, ratio, require_quiet
from tests.testing import Flower, flower_env

TWIN = Path(__file__).resolve().parent / "pickle_twin.py"


def make_twin(folder: Path) -> Path:
    """Write a Flower app folder holding the pickle twin under this app's config."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    config["project"]["name"] = "pickle-twin"
    config["project"].pop("scripts", None)
    app = config["tool"]["flwr"]["app"]
    app["components"] = {
        "serverapp": "pickle_twin:serverapp",
        "clientapp": "pickle_twin:clientapp",
    }
    app["fab-include"] = ["pickle_twin.py"]
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(tomli_w.dumps(config))
    shutil.copy(TWIN, folder / "pickle_twin.py")
    return folder


def make_app(folder: Path) -> Path:
    """Unpack this app's FAB into `folder`: the app as `flwr run` ships it."""
    with zipfile.ZipFile(BytesIO(build_fab_from_disk(ROOT))) as fab:
        names = [name for name in fab.namelist() if not name.startswith(".info/")]
        fab.extractall(folder, names)
    return folder


def fab_build_seconds(app: Path) -> float:
    """How long flwr takes to build the FAB of the app folder `app`."""
    start = time.perf_counter()
    build_fab_from_disk(app)
    return time.perf_counter() - start


def run(flower: Flower, app: Path, run_config: str) -> tuple[float, float]:
    """Wall time of one `flwr run`, and the final accuracy it logged."""
    args = ["--federation-config", "num-supernodes=10"]
    if run_config:
        args += ["--run-config", run_config]
    start = time.perf_counter()
    process = flower.run_streaming(app, *args)
    log, _ = process.communicate(timeout=1800)
    elapsed = time.perf_counter() - start
    accuracy = re.search(r"final centralized accuracy (\d\.\d+)", log)
    if process.returncode != 0 or accuracy is None:
        raise RuntimeError(f"run of {app} failed:\n{log}")
    return elapsed, float(accuracy.group(1))


def main(argv: list[str] | None = None) -> Path:
    """Alternate the two apps, print the table, write the JSON."""
    arguments = parser(__doc__)
    arguments.add_argument("--runs", type=int, default=5, help="runs of each app")
    args = arguments.parse_args(argv)
    start = require_quiet(args.force)
    runs, run_config = (1, "num-server-rounds=1") if args.quick else (args.runs, "")
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "flwr-home"
        home.mkdir()
        flower = Flower(home, flower_env(home))
        apps = {
            "protobuf": make_app(Path(folder) / "protobuf-app"),
            "pickle": make_twin(Path(folder) / "pickle-twin"),
        }
        fab_builds = {
            name: fab_build_seconds(app)
            for name, app in [("checkout", ROOT), *apps.items()]
        }
        times: dict[str, list[float]] = {name: [] for name in apps}
        accuracy: dict[str, list[float]] = {name: [] for name in apps}
        try:
            run(flower, apps["protobuf"], run_config)  # warm-up: starts the SuperLink
            for _ in track(range(runs), "whole runs"):
                for name, app in apps.items():
                    elapsed, final = run(flower, app, run_config)
                    times[name].append(elapsed)
                    accuracy[name].append(final)
        finally:
            flower.stop_all()
    rows: list[list[object]] = [
        [name, Spread.of(times[name]), Spread.of(accuracy[name])] for name in apps
    ]
    rows.append(["protobuf / pickle", ratio(times["protobuf"], times["pickle"]), "-"])
    rows += [[f"FAB build, {name} folder", s, "-"] for name, s in fab_builds.items()]
    return publish(
        "whole_run",
        f"Whole run: flwr run . against the pickle twin, {runs} alternating runs "
        "each, median (lowest to highest) (target ratio <= 1.05)",
        ["app", "wall s", "final accuracy"],
        rows,
        args.output,
        start,
    )


if __name__ == "__main__":
    main()
