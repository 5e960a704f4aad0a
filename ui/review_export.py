"""Files the review window writes: one procedure as a DICOM RDSR or as JSON, and the procedure
table as CSV. No Qt here; the window supplies the rows it shows.

- RDSR: ``fluoro.rdsr.export.export_rdsr`` (X-Ray Radiation Dose SR, SOP class
  1.2.840.10008.5.1.4.1.1.88.67, PS3.16 TID 10001), the same file ``fluoro dose export-rdsr``
  writes.
- JSON: ``{"dose_log": PATH, "procedures": [procedure_json]}``, the shape of
  ``fluoro dose report --json`` with the one procedure, so the same tools read both.
- CSV: UTF-8 with a header row, the table's column titles (units in them) and the text each
  cell shows, then the full procedure UID and patient key (the table shortens the key).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from fluoro.doselog import DoseLog, ProcedureSummary
from fluoro.errors import InputError
from fluoro.report.json import procedure_json

__all__ = ["write_csv", "write_json", "write_rdsr"]


def _writable(path: Path) -> Path:
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a file name")
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    return path


def _replace_with(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and move it into place, so a failed
    write never leaves half a file under the chosen name."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        temporary.write_text(text, encoding="utf-8", newline="")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write: {exc.strerror}") from None
    return path


def write_rdsr(log: DoseLog, procedure_uid: str, path: str | os.PathLike[str]) -> Path:
    """Write procedure ``procedure_uid`` of ``log`` as an RDSR at ``path``; returns the path."""
    from fluoro.rdsr.export import export_rdsr  # pydicom is loaded only when exporting

    return export_rdsr(log, procedure_uid, _writable(Path(path)))


def write_json(log: DoseLog, summary: ProcedureSummary, path: str | os.PathLike[str]) -> Path:
    """Write one procedure's totals, alarms and acknowledgements (``procedure_json``)."""
    document = {"dose_log": str(log.path), "procedures": [procedure_json(log, summary)]}
    return _replace_with(_writable(Path(path)), json.dumps(document, indent=2) + "\n")


def write_csv(path: str | os.PathLike[str], header: Sequence[str],
              rows: Sequence[Sequence[str]]) -> Path:
    """Write ``header`` and ``rows`` (the cells' text) as CSV; returns the path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return _replace_with(_writable(Path(path)), buffer.getvalue())
