"""Polling for tests that drive real processes (workers, servers, databases)."""
import time


def wait_for(predicate, timeout: float = 45, interval: float = 0.2, what: str = "condition"):
    """``predicate()``'s first truthy value, polled every ``interval`` seconds; fails the test
    after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
