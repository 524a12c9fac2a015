"""Publishing an output directory: every job that writes a directory does it here, through ``publish``.

A job writes its files into a hidden staging sibling of the output
(``.NAME.incomplete-<id>``). ``publish`` then:

1. checks the output (a new or empty directory, or ``overwrite`` of a directory
   this tool wrote: its manifest lists exactly the files it holds; never a file);
2. moves a previous output aside, to a hidden sibling (``.NAME.replaced-<id>``);
3. renames the staging directory into place (restoring the previous output if that fails);
4. writes the marker file that makes the output complete (``index.json``,
   ``_table.json``), then the manifest (``_rebalance_manifest.json``, every
   file the tool wrote, with its version): last, so that a copy interrupted
   on an object store, where a rename is a copy, never looks complete;
5. only then removes the previous output. A removal that fails is reported
   (a warning naming what is left), not swallowed.

If a step before 5 fails, the staging directory is removed and the previous
output is put back.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Sequence

from balance import __version__, fileio, jsonfile
from balance.errors import RebalanceError, invalid
from balance.table import WeightTable
from balance.table_set import INDEX_NAME, index_json, table_file_names

_LOG = logging.getLogger(__name__)

MANIFEST_NAME = "_rebalance_manifest.json"
MANIFEST_FORMAT = "tf-rebalance/output"
_SHOWN = 5  # foreign files named in a refusal


def _gfile():
    import tensorflow as tf  # noqa: PLC0415 (remote paths only)

    return tf.io.gfile


def makedirs(path: str) -> None:
    _gfile().makedirs(path) if fileio.is_remote(path) else os.makedirs(path, exist_ok=True)


def rename(src: str, dst: str) -> None:
    _gfile().rename(src, dst) if fileio.is_remote(src) else os.rename(src, dst)


def rmtree(path: str) -> None:
    """Removes a directory tree (nothing if it does not exist); raises ``OSError`` if it cannot."""
    if fileio.is_remote(path):
        if _gfile().exists(path):
            _gfile().rmtree(path)
    elif os.path.lexists(path):
        shutil.rmtree(path)


def remove_staging(path: str) -> None:
    """Removes a staging directory after a failure; a removal that fails is logged (the failure is what the
    caller raises)."""
    try:
        rmtree(path)
    except OSError as err:
        _LOG.warning("Could not remove the staging directory %s (%s); remove it by hand", path, err)


def hidden_sibling(output: str, kind: str = "incomplete") -> str:
    """A hidden sibling of ``output`` that does not look like it: ``.NAME.<kind>-<id>``."""
    parent, name = output.rstrip("/").rsplit("/", 1) if "/" in output.rstrip("/") else (".", output)
    return f"{parent}/.{name}.{kind}-{uuid.uuid4().hex[:12]}"


def staging_dir(output: str) -> str:
    """Where a job writes ``output`` before ``publish``."""
    return hidden_sibling(output, "incomplete")


def is_nonempty_dir(path: str) -> bool:
    return fileio.exists(path) and (not fileio.isdir(path) or bool(fileio.listdir(path)))


def check_output(output: str, overwrite: bool, what: str = "a directory", hint: str | None = None) -> None:
    """Refuses a file, and a non-empty directory unless ``overwrite`` and the directory is ours
    (``check_ours``).

    Args:
      what: the directory, as the error names it when ``output`` is a file.
      hint: what the directory holds, said then.
    """
    if not isinstance(output, str) or not output.rstrip("/"):
        raise invalid("output", "a directory path", output)
    if fileio.exists(output) and not fileio.isdir(output):
        raise invalid("output", f"{what} (not a file)", output, hint=hint)
    if is_nonempty_dir(output):
        if not overwrite:
            raise invalid("output", "a new or empty directory", output, hint="Pass --overwrite to replace it")
        check_ours(output)


def files_in(directory: str) -> list[str]:
    """Every file under ``directory`` (a symlink to a directory counts as a file), as sorted paths relative
    to it (``a/b.json``)."""
    base = directory.rstrip("/")
    found = []
    if fileio.is_remote(base):
        for root, _, files in _gfile().walk(base):
            rel = root.rstrip("/")[len(base):].lstrip("/")
            found += [f"{rel}/{f}" if rel else f for f in files]
        return sorted(found)
    for root, dirs, files in os.walk(base):
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        found += [os.path.relpath(os.path.join(root, f), base) for f in files + links]
    return sorted(found)


def manifest_json(files: list[str], sizes: dict[str, int] | None = None) -> str:
    """The text of the manifest of an output holding ``files`` (relative paths, the manifest excluded),
    with each file's size in bytes where ``sizes`` gives it."""
    manifest = {"format": MANIFEST_FORMAT, "tool": "tf-rebalance", "tool_version": __version__,
                "files": sorted(files)}
    if sizes is not None:
        manifest["sizes"] = {f: sizes[f] for f in sorted(files)}
    return json.dumps(manifest, indent=2) + "\n"


def write_manifest(output: str) -> None:
    """Writes the manifest of ``output``, listing every file it holds and its size: the last file a job writes."""
    files = [f for f in files_in(output) if f != MANIFEST_NAME]
    fileio.write_text_atomically(f"{output}/{MANIFEST_NAME}",
                                 manifest_json(files, {f: fileio.size(f"{output}/{f}") for f in files}))


def check_ours(output: str) -> None:
    """Refuses to replace a directory unless its manifest says this tool wrote it and it holds exactly the
    files listed (nothing of anyone else's is lost by replacing it).

    Raises:
      ValueError: naming the directory and a few foreign (or missing) files.
    """
    present = files_in(output)
    others = [f for f in present if f != MANIFEST_NAME]
    expected = "a directory written by rebalance (its " + MANIFEST_NAME + " lists exactly the files it holds)"
    if MANIFEST_NAME not in present:
        raise invalid("output", expected, output,
                      hint=f"It holds files rebalance did not write ({_few(others)}) and no {MANIFEST_NAME}; "
                      "--overwrite replaces only rebalance's own output. Choose a new directory, or move "
                      "these files away first")
    try:
        manifest = jsonfile.read_json(f"{output}/{MANIFEST_NAME}", what="output manifest")
    except RebalanceError as err:
        raise invalid("output", expected, output, hint=f"Its {MANIFEST_NAME} is not readable: {err}") from None
    listed = manifest.get("files") if isinstance(manifest, dict) else None
    if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT
            or not isinstance(listed, list) or not all(isinstance(f, str) for f in listed)):
        raise invalid("output", expected, output, hint=f"Its {MANIFEST_NAME} is not a rebalance manifest")
    foreign = sorted(set(others) - set(listed))
    missing = sorted(set(listed) - set(others))
    sizes = manifest.get("sizes")
    changed = sorted(f for f in set(others) & set(listed) if isinstance(sizes, dict)
                     and isinstance(sizes.get(f), int) and fileio.size(f"{output}/{f}") != sizes[f])
    if foreign or missing or changed:
        said = []
        if foreign:
            said.append(f"files rebalance did not write: {_few(foreign)}")
        if missing:
            said.append(f"listed files that are gone: {_few(missing)}")
        if changed:
            said.append(f"files changed since rebalance wrote them: {_few(changed)}")
        raise invalid("output", expected, output,
                      hint=f"It holds {'; '.join(said)}. --overwrite replaces only rebalance's own, unchanged "
                      "output: move other files away first, or choose a new directory")


def _few(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _real(path: str) -> str:
    return path.rstrip("/") if fileio.is_remote(path) else os.path.realpath(path)


def check_apart(output: str, inputs: Sequence[str], *, directory: bool) -> None:
    """Refuses an output that is one of the ``inputs`` (files the job reads), or, for a directory, holds one.

    Args:
      output: the output file or directory.
      inputs: the input files (the data's, and any table or target file the job reads).
      directory: ``output`` is a directory (else a file).

    Raises:
      ValueError: naming the output and the input.
    """
    out = _real(output)
    for path in inputs:
        real = _real(path)
        if real == out:
            raise invalid("output", "a path that is not one of the inputs", output,
                          hint=f"{path!r} is an input of this job; writing there would replace it")
        if directory and real.startswith(out.rstrip("/") + "/"):
            raise invalid("output", "a directory that holds none of the inputs", output,
                          hint=f"It holds the input {path!r}; publishing the output there would replace it")


def check_table_output(output: str) -> None:
    """Refuses a table ``--output`` that exists and is not a weight table: a table file is replaced
    (the new table is complete first), any other file is the user's and stays."""
    if not fileio.exists(output) or fileio.isdir(output):
        return  # a directory is refused where the table is written, naming it
    try:
        WeightTable.load(output)
    except ValueError as err:
        raise invalid("output", "a new file, or a weight table to replace", output,
                      hint=f"{output!r} exists and is not a weight table ({str(err)[:200]}); rebalance "
                      "replaces only a table. Remove it, or choose another --output") from None


def publish(staging: str, output: str, *, overwrite: bool, complete: Callable[[str], None],
            what: str = "a directory", hint: str | None = None) -> str:
    """Makes the staging directory ``output`` (see the module's steps); returns ``output``.

    Args:
      staging: the directory holding every file of the output but its marker.
      output: where it is published.
      overwrite: replace a non-empty ``output``.
      complete: ``complete(output)`` writes the marker file, once ``output`` holds the rest; the manifest
        follows it.
      what, hint: for ``check_output``.

    Raises:
      ValueError: ``output`` is a file, non-empty without ``overwrite``, or (with it) not this tool's
        unchanged output.
      OSError: the file system failed; ``output`` is then as it was.
    """
    output = output.rstrip("/")
    previous = None
    try:
        check_output(output, overwrite, what, hint)
        if fileio.exists(output):
            previous = hidden_sibling(output, "replaced")
            rename(output, previous)
        else:
            parent = output.rsplit("/", 1)[0] if "/" in output else "."
            makedirs(parent)
        try:
            rename(staging, output)
        except BaseException:
            if previous is not None:
                rename(previous, output)
            raise
    except BaseException:
        remove_staging(staging)
        raise
    try:
        complete(output)
        write_manifest(output)
    except BaseException:
        remove_staging(output)  # incomplete: it has no marker
        if previous is not None:
            rename(previous, output)
        raise
    if previous is not None:
        try:
            rmtree(previous)
        except OSError as err:
            _LOG.warning("Published %s, but the output it replaced could not be removed (%s); it is left at %s: "
                         "remove it by hand", output, err, previous)
    return output


# ----------------------------------------------------------- tables
TABLES = "a directory for one table per label"
TABLES_HINT = f"With several --label the output is a directory holding LABEL.json files and {INDEX_NAME}"


def check_tables_output(directory: str, overwrite: bool) -> None:
    """``check_output`` for a directory of tables."""
    check_output(directory, overwrite, TABLES, TABLES_HINT)


def publish_tables(tables: dict[str, WeightTable], directory: str, overwrite: bool = False) -> str:
    """Publishes one table per label and ``index.json`` (the marker) as ``directory``; returns it.

    On failure ``directory`` is left as it was.
    """
    output = directory.rstrip("/")
    files = table_file_names(list(tables))
    first = next(iter(tables.values()))
    staging = staging_dir(output)
    try:
        makedirs(staging)
        for label, table in tables.items():
            table.save(f"{staging}/{files[label]}")
    except BaseException:
        remove_staging(staging)
        raise
    fingerprints = {t.provenance.get("fingerprint") for t in tables.values()}
    index = index_json(files, first.provenance.get("inputs") or [],
                       fingerprints.pop() if len(fingerprints) == 1 else None)
    # Only a directory holding an index is complete (balance.load_tables refuses one without).
    return publish(staging, output, overwrite=overwrite, what=TABLES, hint=TABLES_HINT,
                   complete=lambda out: fileio.write_text_atomically(f"{out}/{INDEX_NAME}", index))
