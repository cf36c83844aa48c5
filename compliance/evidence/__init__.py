"""Evidence exports (RULES.md L3): per framework and period, one signed ZIP an auditor can verify
offline. This package reads every app (through querysets it owns here, read-only) and writes only
``EvidenceExport`` rows and bundle files.

- ``services``: request, retry and download an export (the one door for every client);
- ``builder``: the Celery task's body — streams the datasets into the ZIP, with progress;
- ``audit/bundle_verify.py``: the offline verifier (no Django), wrapped by ``evidence_verify``.
"""
