"""`flower-meta decode` and `flower-meta report`, on vectors, logs and bad input."""

import base64
from pathlib import Path

import pytest
from flower_meta.v1.metadata_pb2 import MetadataLogRecord

from flower_app.protocol.metadata_log import BINARY_LOG, MetadataLog
from flower_app.reporting import cli, report
from tests.conftest import VECTORS, sample_metadata

TUTORIAL = VECTORS / "tutorial_example.binpb"


def _json(name: str) -> str:
    return (VECTORS / f"{name}.json").read_text()


@pytest.mark.parametrize(
    "args",
    [
        [str(TUTORIAL)],
        [TUTORIAL.read_bytes().hex(), "--encoding", "hex"],
        [base64.b64encode(TUTORIAL.read_bytes()).decode(), "--encoding", "base64"],
    ],
    ids=["file", "hex", "base64"],
)
def test_decode_prints_canonical_json(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["decode", *args]) == 0
    assert capsys.readouterr().out == _json("tutorial_example")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([str(VECTORS / "nan_loss.binpb")], "loss_out_of_range: training_losses"),
        (["zz", "--encoding", "hex"], "is not valid hex"),
        (["!!", "--encoding", "base64"], "is not valid base64"),
        (["/no/such/payload"], "no such payload file: /no/such/payload"),
        (
            [str(TUTORIAL), "--type-url", "type.googleapis.com/flower_meta.v2.X"],
            "wrong_type",
        ),
    ],
)
def test_decode_fails_clearly(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["decode", *args]) == 1
    assert message in capsys.readouterr().err


def _log_with_damaged_tail(run_dir: Path) -> None:
    metadata_log = MetadataLog(run_dir)
    for server_round in (1, 2):
        record = MetadataLogRecord(run_id=9, server_round=server_round, node_id=4)
        record.accepted.CopyFrom(sample_metadata(3))
        metadata_log.append(record)
    metadata_log.close()
    with (run_dir / BINARY_LOG).open("ab") as tail:
        tail.write(b"\x40\x0a\x03")  # a record that claims 64 bytes, then stops


def test_decode_reads_a_log_up_to_its_damaged_tail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_with_damaged_tail(tmp_path)
    assert cli.main(["decode", "--log", str(tmp_path / BINARY_LOG)]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert '"serverRound":2' in out.splitlines()[1]
    assert "record 3 at byte" in err
    assert "the 2 records before it are intact" in err


def test_report_on_a_damaged_log_covers_the_intact_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_with_damaged_tail(tmp_path)
    assert cli.main(["report", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "Metadata by round" in out
    assert "report covers the intact records only" in err
    for name in report.PLOTS:
        assert (tmp_path / report.REPORT_FOLDER / name).is_file()


@pytest.mark.parametrize(
    ("folder", "message"),
    [("missing", "no such run folder"), ("empty", "holds no metadata.binpb")],
)
def test_report_fails_clearly_without_a_run_folder(
    folder: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / folder)]) == 1
    assert message in capsys.readouterr().err
