"""PostgreSQL: a quote is stored as shown and never changes, except open -> accepted; a swap never changes.

The last line of defence behind fx.services (the ledger does the same for its
entries). Refusals raise 'fx:immutable:<table>'. SQLite (the embedded
default) has no such trigger; the services are the only writers there too.
"""

from django.db import migrations

QUOTE_COLUMNS = (
    "public_id, enterprise_id, sell_currency, buy_currency, fixed_side, mid_rate, client_rate, spread_bps, "
    "sell_amount, buy_amount, fee_amount, usd_value, rates_published_at, rate_sources, created_at, expires_at"
)

FORWARD = f"""
CREATE OR REPLACE FUNCTION fx_quote_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'fx:immutable:fx_quote' USING DETAIL = 'a quote is kept as it was shown';
    END IF;
    IF ROW({", ".join(f"NEW.{c.strip()}" for c in QUOTE_COLUMNS.split(","))})
       IS DISTINCT FROM ROW({", ".join(f"OLD.{c.strip()}" for c in QUOTE_COLUMNS.split(","))}) THEN
        RAISE EXCEPTION 'fx:immutable:fx_quote' USING DETAIL = 'a quote is kept as it was shown';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (OLD.status = 'open' AND NEW.status = 'accepted') THEN
        RAISE EXCEPTION 'fx:immutable:fx_quote' USING DETAIL = 'a quote only goes from open to accepted';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fx_quote_immutable BEFORE UPDATE OR DELETE ON fx_quote
    FOR EACH ROW EXECUTE FUNCTION fx_quote_immutable();

CREATE OR REPLACE FUNCTION fx_swap_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'fx:immutable:fx_swap' USING DETAIL = 'a swap is a record of a posted entry';
END $$;
CREATE TRIGGER fx_swap_immutable BEFORE UPDATE OR DELETE ON fx_swap
    FOR EACH ROW EXECUTE FUNCTION fx_swap_immutable();
"""

REVERSE = """
DROP TRIGGER IF EXISTS fx_swap_immutable ON fx_swap;
DROP FUNCTION IF EXISTS fx_swap_immutable();
DROP TRIGGER IF EXISTS fx_quote_immutable ON fx_quote;
DROP FUNCTION IF EXISTS fx_quote_immutable();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE)


class Migration(migrations.Migration):
    dependencies = [("fx", "0004_inventory_floor_rows")]

    operations = [migrations.RunPython(forwards, backwards)]
