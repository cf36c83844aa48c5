from django.apps import AppConfig


class BenchConfig(AppConfig):
    """The benchmark's data generator and floor endpoints (``manage.py bench_seed``, ``make bench``);
    no product app imports it."""

    name = "bench"
    verbose_name = "Benchmarks"
