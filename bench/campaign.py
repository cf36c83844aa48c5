"""Access-review campaign over N active grants, against its floor: a bulk insert of N rows into
the same item table. Prints wall time, the ratio, queries and the peak memory of the process."""
import resource
import time

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench import data
from governance import services
from governance.models import AccessReview, AccessReviewItem, RoleAssignment


def _floor(count: int) -> float:
    """Bulk-insert ``count`` bare items (same table, same batch size) and roll them back."""
    review = AccessReview.objects.create(period="bench-floor", name="floor", due_at=timezone.now())
    assignment_ids = list(RoleAssignment.objects.order_by("pk").values_list("pk", flat=True)[:count])
    started = time.perf_counter()
    with transaction.atomic():
        AccessReviewItem.objects.bulk_create(
            [AccessReviewItem(review=review, assignment_id=pk, due_at=review.due_at) for pk in assignment_ids],
            batch_size=1000,
        )
    elapsed = time.perf_counter() - started
    AccessReviewItem.objects.filter(review=review).delete()
    review.delete()
    return elapsed


def run(count: int) -> dict:
    data.grants(count)
    active = RoleAssignment.objects.in_force().count()
    floor = _floor(active)
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        review = services.access_review_start(period=f"bench-{count}")
        elapsed = time.perf_counter() - started
    items = review.items.count()
    if items != active:
        raise RuntimeError(f"the campaign reviewed {items} grants, not the {active} active ones")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "benchmark": f"access review campaign over {active} grants",
        "seconds": elapsed,
        "floor": f"bulk insert of {active} item rows",
        "floor_seconds": floor,
        "ratio": elapsed / floor,
        "target": "<= 5x floor, peak < 300 MB",
        "queries": len(queries.captured_queries),
        "peak_mb": peak_mb,
        "ok": elapsed / floor <= 5 and peak_mb < 300,
    }
