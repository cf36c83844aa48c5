"""The compliance room's models: the SIEM sinks (``compliance.siem.models``) and the witnesses of
checkpoints with their cosignatures (``compliance.witnesses.models``)."""
from compliance.siem.models import SiemCursor, SiemSink
from compliance.witnesses.models import Cosignature, Witness

__all__ = ["Cosignature", "SiemCursor", "SiemSink", "Witness"]
