"""Files the tools write: where the tool says, never where a run folder's content says.

A run folder is shared, copied and downloaded, so what it holds is untrusted:
- a name made from content (a record key, a field name) goes through
  `safe_name`: a fixed alphabet and length, never a path;
- every write goes into a folder the tool chose (`output_folder` refuses one
  that is a symlink) and lands there after resolution;
- a whole file is written atomically (`write_atomic`: a temporary file in
  the same folder, fsync, rename over the target), so a crash leaves the old
  file or the new one, and a symlink in the target's place is replaced, not
  followed;
- an appended file is opened with `O_NOFOLLOW` (`open_append`);
- `regular_files` lists what a folder itself holds, never what a symlink
  points to.
"""

import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

NAME_LIMIT = 64
"""Longest name `safe_name` makes, before its file extension."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class UnsafePathError(OSError):
    """A write that would leave its folder or go through a symlink."""


def safe_name(text: str) -> str:
    """Turn content into a file-name part: `A-Z a-z 0-9 _ -`, at most 64 characters.

    Text that already is one comes back as it is; other text keeps its safe
    characters and gains a short hash of the original, so two different
    texts never share a name.
    """
    cleaned = _UNSAFE.sub("_", text)
    if cleaned == text and 0 < len(text) <= NAME_LIMIT:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned[: NAME_LIMIT - 9]}-{digest}"


def output_folder(folder: Path) -> Path:
    """Create `folder` if needed and return it; refuse it if it is a symlink."""
    if folder.is_symlink():
        raise UnsafePathError(f"{folder} is a symlink; refusing to write through it")
    folder.mkdir(parents=True, exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise UnsafePathError(f"{folder} is not a folder; refusing to write there")
    return folder


def inside(folder: Path, name: str) -> Path:
    """Return `folder / name`, the folder resolved; refuse other than a file name.

    The name itself is not resolved: a symlink standing there is what a
    rename replaces.
    """
    if name in ("", ".", "..") or os.sep in name or "\0" in name:
        raise UnsafePathError(f"{name!r} is not a file name inside {folder}")
    return folder.resolve() / name


def write_atomic(folder: Path, name: str, data: bytes) -> Path:
    """Write `data` as `folder/name` all at once; return its path.

    The bytes go to a temporary file beside the target, are synced, and the
    file is renamed over the target: readers see the old file or the new
    one, a crash leaves no half-written file, and a symlink standing at the
    target is replaced, its own target untouched.
    """
    path = inside(output_folder(folder), name)
    handle, temporary = _temporary(folder, name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    sync_folder(folder)
    return path


FILE_MODE = 0o666
"""Every file this library writes: read and write for all the umask lets
through (0644 under the usual 022), never executable."""


def _temporary(folder: Path, name: str) -> tuple[int, str]:
    """Create a new file beside `folder/name` with `FILE_MODE`; return it open."""
    while True:
        temporary = folder / f".{name}.{secrets.token_hex(8)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            return os.open(temporary, flags, FILE_MODE), str(temporary)
        except FileExistsError:
            continue


def sync_folder(folder: Path) -> None:
    """Make a folder's entries (a rename, a new file) durable."""
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def open_append(path: Path) -> int:
    """Open `path` for appending, created if missing, never through a symlink."""
    try:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        return os.open(path, flags, FILE_MODE)
    except OSError as err:
        if path.is_symlink():
            raise UnsafePathError(f"{path} is a symlink; refusing to append") from err
        raise


def regular_files(folder: Path) -> Iterator[Path]:
    """Yield every regular file under `folder`, in order; no symlink is followed."""
    for root, folders, names in os.walk(folder, followlinks=False):
        folders.sort()
        for name in sorted(names):
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                yield path


RUNS_FOLDER = "flower-meta-runs"
"""Where runs go when the run config names no `output-dir`, in $FLWR_HOME."""


def run_folder(output_dir: str, run_id: int) -> Path:
    """Absolute folder for a run's outputs: `output_dir`/`run_id`.

    An empty `output_dir` means $FLWR_HOME/flower-meta-runs (FLWR_HOME
    defaults to ~/.flwr, as in Flower).
    """
    root = Path(output_dir) if output_dir else default_runs_folder()
    return root.expanduser().resolve() / str(run_id)


def default_runs_folder() -> Path:
    """`$FLWR_HOME/flower-meta-runs` (FLWR_HOME defaults to ~/.flwr, as in Flower)."""
    flwr_home = Path(os.environ.get("FLWR_HOME", Path.home() / ".flwr"))
    return flwr_home / RUNS_FOLDER


def trackers_folder(run_dir: Path) -> Path:
    """Where trackers keep their stores for the runs beside `run_dir`.

    A sibling of the runs folder, `<runs folder>-trackers` (by default
    `$FLWR_HOME/flower-meta-runs-trackers`): MLflow's database and
    artifacts and TensorBoard's event files go there, so the runs folder
    holds nothing but run folders and an export never touches a run folder.
    """
    runs = run_dir.resolve().parent
    return runs.with_name(f"{runs.name}-trackers")
