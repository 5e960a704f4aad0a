"""DICOM dates and times (PS3.5 section 6.2: DA, TM, DT and the Timezone Offset From UTC), read
and written in one place for the dose reports, the dose log's imported procedures, the RSO
reports and the window's snapshots.

Reading is lenient in what vendors write (any DT precision from the day, ``&ZZXX`` offsets and
the non-standard ``UTC-04:00``), and says None rather than guess; writing is strict (UTC, the
offset given once per document).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

__all__ = ["da_tm", "dicom_datetime", "parse_dicom_datetime", "parse_utc_offset"]


def parse_dicom_datetime(text: str | None, offset: str | None = None) -> datetime | None:
    """A DICOM DT (``YYYYMMDDHHMMSS.FFFFFF&ZZXX``, any precision from the day) as an aware
    datetime; without an offset in the text, ``offset`` (``&ZZXX``, Timezone Offset From UTC) or,
    failing that, UTC. None when the text is absent or not a DT."""
    if not text:
        return None
    text = text.strip()
    zone = None
    for sign in "+-":
        if sign in text[8:]:
            at = text.index(sign, 8)
            text, zone = text[:at], text[at:]
    zone = zone or (offset.strip() if offset else None)
    digits, _, fraction = text.partition(".")
    if len(digits) < 8 or not digits.isdigit():
        return None
    digits = digits.ljust(14, "0") if len(digits) >= 8 else digits
    try:
        moment = datetime.strptime(digits[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    if fraction.isdigit():
        moment = moment.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    delta = parse_utc_offset(zone)
    return moment.replace(tzinfo=UTC if delta is None else timezone(delta))


def parse_utc_offset(text: str | None) -> timedelta | None:
    """A Timezone Offset From UTC (``&ZZXX``; also the non-standard ``UTC-04:00`` and
    ``+04:00`` that some vendors write) as a timedelta; None when absent or not an offset."""
    zone = (text or "").strip().upper().removeprefix("UTC").replace(":", "")
    if len(zone) != 5 or zone[0] not in "+-" or not zone[1:].isdigit():
        return None
    delta = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
    return delta if zone[0] == "+" else -delta


def dicom_datetime(moment: datetime) -> str:
    """A DICOM DT in UTC, ``YYYYMMDDHHMMSS.FFFFFF``. The offset is left out of the value (dcmtk
    3.6.7 refuses DT values with one) and given once for the document instead: Timezone Offset
    From UTC (0008,0201) ``+0000``."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S.%f")


def da_tm(moment: datetime) -> tuple[str, str]:
    """``(DA, TM)`` of ``moment`` as its own clock shows it: ``YYYYMMDD``, ``HHMMSS``."""
    return moment.strftime("%Y%m%d"), moment.strftime("%H%M%S")
