"""Real concurrent transactions for the race stories (PostgreSQL, committed data): each call runs
in its own thread with its own connection, and a call can wait until another is blocked on a row
lock, so a story can put one transaction exactly inside another's window."""
import threading

from django.db import connection, connections

from tests.waiting import wait_for


def at_the_same_moment(*calls) -> list:
    """Run each call in its own thread, released together; returns each call's result or exception."""
    start = threading.Barrier(len(calls))

    def released(call):
        def run():
            start.wait(timeout=30)
            return call()
        return run

    return in_threads(*(released(call) for call in calls))


def in_threads(*calls) -> list:
    """Run each call in its own thread (they order themselves); returns each call's result or exception."""
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            outcomes[index] = call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call), name=f"actor-{i}") for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "still running after 60 s: a deadlock?"
    return outcomes


def backend_pid() -> int:
    """This thread's PostgreSQL backend, as ``pg_stat_activity`` names it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def wait_until_blocked(pid: int, finished: threading.Event, what: str) -> None:
    """Until backend ``pid`` waits for a lock another transaction holds, or its thread is done
    without ever waiting (then the race had nothing to serialise)."""
    def blocked_or_done():
        if finished.is_set():
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
        return row is not None and row[0] == "Lock"

    wait_for(blocked_or_done, timeout=20, interval=0.02, what=what)
