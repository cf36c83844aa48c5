"""Builds one evidence bundle (placeholder: being written in issue 5)."""


def build(export_id: int) -> str:
    raise NotImplementedError
