"""Which blob access tier the dumps sit in over their life: the daily copies stay cool; a monthly copy kept for years
moves to the cold tier once its cool minimum has passed, when it lives long enough to pay the cold minimum.

Azure's early-deletion periods (MS docs "Access tiers for blob data"): cool 30 days, cold 90 days, archive 180 days.
Archive is not offered: it is supported on LRS, GRS and RA-GRS accounts only (same page), and the backup account is
GZRS in prod. Tiering does not modify a blob (REST "Set Blob Tier", read 2026-12-06: the operation does not update
the blob's ETag), so a container's time-based immutability leaves it allowed. Standard library only.
"""

from __future__ import annotations

from .backup_plan import MONTHLY

COOL_MINIMUM_DAYS = 30
COLD_MINIMUM_DAYS = 90
COLD_CONTAINER = MONTHLY  # the container of the copies kept for the records' retention


def cold_after_days(retention_days: int) -> int | None:
    """Days after upload at which a copy kept `retention_days` moves to cold, or None when it never should: it would
    be deleted before the cold tier's minimum and billed for days it no longer exists."""
    if retention_days - COOL_MINIMUM_DAYS < COLD_MINIMUM_DAYS:
        return None
    return COOL_MINIMUM_DAYS
