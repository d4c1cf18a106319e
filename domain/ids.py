"""Identifiers: time-ordered UUIDs (version 7) as strings.

Time order keeps new rows at the right edge of every primary-key index and
makes ids a stable tie-break for keyset pagination.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import NewType

TenantId = NewType("TenantId", str)
JobId = NewType("JobId", str)
EndpointId = NewType("EndpointId", str)
RunId = NewType("RunId", str)

DEFAULT_TENANT = TenantId("default")


def new_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 68) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))
