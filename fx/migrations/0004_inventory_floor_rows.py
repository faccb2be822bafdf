"""Data: one InventoryFloor row per currency (floor 0), so the back office sees every currency's inventory in admin."""

from django.db import migrations

CURRENCIES = ("HKD", "USD", "CNH")


def forwards(apps, schema_editor):
    InventoryFloor = apps.get_model("fx", "InventoryFloor")
    for code in CURRENCIES:
        InventoryFloor.objects.get_or_create(currency=code, defaults={"floor": 0})


class Migration(migrations.Migration):
    dependencies = [("fx", "0003_tick_latest_index")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
