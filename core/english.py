"""English for messages built from names: ``possessive("payments")`` is "payments'", not "payments's"."""


def possessive(name) -> str:
    """The possessive of a name: "dev's", "payments'" (a name ending in s takes the apostrophe alone)."""
    name = str(name)
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"
