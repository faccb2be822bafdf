"""Returned payouts: a redemption the bank paid and then reported failed (the funds came back).

The redemption gets the state ``returned``, ``returned_at`` and the entry that
re-mints the tokens (``return_entry``); the journal a new entry kind,
``redemption_reversed`` (reserve → wallet).

The journal's kind CHECK is replaced without a long lock on PostgreSQL: the
new constraint is added ``NOT VALID`` (instant; new rows are checked at once)
and then validated, which scans the journal under SHARE UPDATE EXCLUSIVE, so
posting goes on meanwhile. The old constraint allowed a subset of the new one.
"""

import django.db.models.deletion
from django.db import migrations, models

ENTRY_KINDS = [
    "mint",
    "transfer",
    "redemption",
    "redemption_paid",
    "redemption_returned",
    "redemption_reversed",
    "fx_swap",
    "netting",
    "reversal",
]
OLD_ENTRY_KINDS = [kind for kind in ENTRY_KINDS if kind != "redemption_reversed"]


def _kind_check(kinds):
    return models.CheckConstraint(condition=models.Q(kind__in=kinds), name="entry_kind_valid")


def _entry_kinds_swap(apps, schema_editor, *, old, new):
    model = apps.get_model("settlement", "JournalEntry")
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.remove_constraint(model, _kind_check(old))
        schema_editor.add_constraint(model, _kind_check(new))
        return
    listed = ", ".join(f"'{kind}'" for kind in new)
    schema_editor.execute("ALTER TABLE settlement_journalentry DROP CONSTRAINT entry_kind_valid")
    schema_editor.execute(
        f"ALTER TABLE settlement_journalentry ADD CONSTRAINT entry_kind_valid CHECK (kind IN ({listed})) NOT VALID"
    )
    schema_editor.execute("ALTER TABLE settlement_journalentry VALIDATE CONSTRAINT entry_kind_valid")


def entry_kinds_forward(apps, schema_editor):
    _entry_kinds_swap(apps, schema_editor, old=OLD_ENTRY_KINDS, new=ENTRY_KINDS)


def entry_kinds_backward(apps, schema_editor):
    _entry_kinds_swap(apps, schema_editor, old=ENTRY_KINDS, new=OLD_ENTRY_KINDS)


class Migration(migrations.Migration):
    dependencies = [
        ("settlement", "0019_redemption_requested_at_set_by_service"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="journalentry", name="entry_kind_valid"),
                migrations.AddConstraint(model_name="journalentry", constraint=_kind_check(ENTRY_KINDS)),
            ],
            database_operations=[migrations.RunPython(entry_kinds_forward, entry_kinds_backward)],
        ),
        migrations.RemoveConstraint(
            model_name="redemption",
            name="redemption_state_valid",
        ),
        migrations.RemoveConstraint(
            model_name="redemption",
            name="redemption_processing_has_debit",
        ),
        migrations.RemoveConstraint(
            model_name="redemption",
            name="redemption_settled_has_entry",
        ),
        migrations.AddField(
            model_name="redemption",
            name="return_entry",
            field=models.OneToOneField(
                blank=True,
                help_text="Reserve → wallet: the tokens re-minted when a paid payout came back",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="settlement.journalentry",
            ),
        ),
        migrations.AddField(
            model_name="redemption",
            name="returned_at",
            field=models.DateTimeField(
                blank=True, help_text="When the bank reported the paid payout failed (the funds came back)", null=True
            ),
        ),
        migrations.AlterField(
            model_name="journalentry",
            name="kind",
            field=models.CharField(
                choices=[
                    ("mint", "Mint"),
                    ("transfer", "Transfer"),
                    ("redemption", "Redemption"),
                    ("redemption_paid", "Redemption paid"),
                    ("redemption_returned", "Redemption failed, tokens back"),
                    ("redemption_reversed", "Redemption returned by the bank, tokens re-minted"),
                    ("fx_swap", "FX swap"),
                    ("netting", "Netting settlement"),
                    ("reversal", "Reversal"),
                ],
                max_length=32,
            ),
        ),
        migrations.AlterField(
            model_name="redemption",
            name="state",
            field=models.CharField(
                choices=[
                    ("requested", "Requested"),
                    ("awaiting_approval", "Awaiting approval"),
                    ("processing", "Processing"),
                    ("paid", "Paid"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                    ("returned", "Returned by the bank"),
                ],
                default="requested",
                max_length=24,
            ),
        ),
        migrations.AddConstraint(
            model_name="redemption",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "state__in",
                        ["requested", "awaiting_approval", "processing", "paid", "failed", "cancelled", "returned"],
                    )
                ),
                name="redemption_state_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="redemption",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("state__in", ["processing", "paid", "failed", "returned"]), _negated=True),
                    models.Q(
                        ("approved_at__isnull", False), ("deadline_at__isnull", False), ("debit_entry__isnull", False)
                    ),
                    _connector="OR",
                ),
                name="redemption_processing_has_debit",
            ),
        ),
        migrations.AddConstraint(
            model_name="redemption",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("state__in", ["paid", "failed", "returned"]), _negated=True),
                    ("settle_entry__isnull", False),
                    _connector="OR",
                ),
                name="redemption_settled_has_entry",
            ),
        ),
        migrations.AddConstraint(
            model_name="redemption",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("state", "returned"),
                        ("paid_at__isnull", False),
                        ("return_entry__isnull", False),
                        ("returned_at__isnull", False),
                    ),
                    models.Q(
                        models.Q(("state", "returned"), _negated=True),
                        ("return_entry__isnull", True),
                        ("returned_at__isnull", True),
                    ),
                    _connector="OR",
                ),
                name="redemption_returned_has_entry",
            ),
        ),
    ]
