"""``make bench``: each benchmark against its floor, measured in the same run, on the database
the environment names (PostgreSQL when DATABASE_URL is set: the shape that counts). Runs in a
throwaway database so the development data is untouched."""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> int:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from bench import campaign

    grants = int(os.environ.get("BENCH_GRANTS", "100000"))
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        results = [campaign.run(grants)]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
    failed = 0
    for r in results:
        print(
            f"{r['benchmark']}: {r['seconds']:.2f} s | floor ({r['floor']}): {r['floor_seconds']:.2f} s | "
            f"ratio {r['ratio']:.2f} | target {r['target']} | queries {r['queries']} | "
            f"peak {r['peak_mb']:.0f} MB | {'OK' if r['ok'] else 'MISSED'}"
        )
        failed += not r["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
