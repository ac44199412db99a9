"""Settings of the cat project: one SQLite database (``CATS_DB``, or cats.db here)."""

import os
from pathlib import Path

SECRET_KEY = "only-for-the-example"
INSTALLED_APPS = [
    "stateward.actors.rows.django",  # the audit table and its migration
    "catproject.cats",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("CATS_DB", str(Path(__file__).resolve().parent / "cats.db")),
        # Every atomic() block takes SQLite's write lock up front (stateward's own
        # transactions do anyway): no deadlocked upgrade, no "database is locked".
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 10},
        "CONN_MAX_AGE": None,
    }
}
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
