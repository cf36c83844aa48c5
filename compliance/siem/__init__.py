"""Streaming the audit trail to a SIEM (issue 19, docs/siem.md): governed sinks (``controls``), the
event formats (``formats``, ``ocsf``), the transports (``transports``), batch signatures
(``signatures``) and the at-least-once delivery loop (``delivery``)."""
