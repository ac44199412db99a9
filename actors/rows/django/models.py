"""The audit model: one entry per committed transition of a bound row.

The table (``stateward_audit``) has the columns of the SQLAlchemy binding's
``AUDIT_TABLE``, so both bindings can share it. A binding may name its own
audit model instead (``DjangoBinding(audit_model=...)``): a concrete subclass
of `AbstractAuditEntry`, with its own migration.
"""

from __future__ import annotations

from django.db import models

from .._adapter import AUDIT_KEY_LENGTH, AUDIT_TABLE_NAME


class AbstractAuditEntry(models.Model):
    """The fields of an audit entry; subclass it for an audit model of your own."""

    table_name = models.CharField(max_length=200)
    row_key = models.CharField(max_length=AUDIT_KEY_LENGTH)
    from_state = models.CharField(max_length=200, null=True)
    to_state = models.CharField(max_length=200)
    event = models.CharField(max_length=200, null=True)
    version = models.IntegerField(null=True)
    at = models.DateTimeField()
    payload = models.BinaryField()
    process = models.IntegerField()

    class Meta:
        abstract = True


class AuditEntry(AbstractAuditEntry):
    """The default audit model (table ``stateward_audit``)."""

    class Meta:
        db_table = AUDIT_TABLE_NAME
        indexes = [  # noqa: RUF012 (Django's Meta)
            models.Index(fields=["table_name", "row_key", "id"], name="ix_stateward_audit_row"),
        ]
