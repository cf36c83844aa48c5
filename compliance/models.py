"""The compliance room's models: the SIEM sinks (``compliance.siem.models``)."""
from compliance.siem.models import SiemCursor, SiemSink

__all__ = ["SiemCursor", "SiemSink"]
