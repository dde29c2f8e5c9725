from tortoise import migrations
from tortoise.migrations import operations as ops
from app.domain.enums import SignalStatus
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='EngineInstance',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seen_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('market_source', fields.CharField(max_length=200)),
                ('is_live_market', fields.BooleanField()),
                ('symbols', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('intervals', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('last_candle_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'engine_instances', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An engine process and the market it sees, refreshed by its heartbeat: an API process'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='Signal',
            options={'table': 'signals', 'app': 'models', 'indexes': [Index(fields=['trader_id', 'created_at']), Index(fields=['trader_id', 'symbol', 'status']), Index(fields=['status', 'lease_until'])], 'pk_attr': 'id', 'table_description': "A trader's screening match, and through its status the queue between the stages."},
        ),
        ops.AlterField(
            model_name='Signal',
            name='status',
            field=fields.CharEnumField(default=SignalStatus.NEW, description='NEW: new\nWATCHING: watching\nREADY: ready\nENTERED: entered\nREJECTED: rejected\nCANCELLED: cancelled\nEXPIRED: expired', enum_type=SignalStatus, max_length=10),
        ),
        ops.AddField(
            model_name='Signal',
            name='lease_owner',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Signal',
            name='lease_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Signal',
            name='status_reason',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddIndex(
            model_name='Signal',
            index=Index(fields=['status', 'lease_until']),
        ),
        # Hand-written: altering a column rebuilds the table on SQLite, and Tortoise does not
        # recreate the table's indexes then (PostgreSQL keeps them).
        ops.RunSQL(
            [
                'CREATE INDEX IF NOT EXISTS "idx_signals_trader__a6d113" '
                'ON "signals" ("trader_id", "created_at")',
                'CREATE INDEX IF NOT EXISTS "idx_signals_trader__28db02" '
                'ON "signals" ("trader_id", "symbol", "status")',
            ],
            reverse_sql=[],
        ),
        # Hand-written: the autodetector cannot express a partial unique index on SQLite.
        # At most one active signal per trader and symbol, whatever process inserts it; the
        # statuses are app.domain.enums.ACTIVE_SIGNAL_STATUSES (tests/test_signal_queue.py
        # checks that they agree). Older duplicates, if any, are expired first.
        ops.RunSQL(
            [
                "UPDATE signals SET status = 'expired' "
                "WHERE status IN ('new', 'watching', 'ready') AND EXISTS ("
                "SELECT 1 FROM signals newer WHERE newer.trader_id = signals.trader_id "
                "AND newer.symbol = signals.symbol "
                "AND newer.status IN ('new', 'watching', 'ready') "
                "AND (newer.created_at > signals.created_at "
                "OR (newer.created_at = signals.created_at AND newer.id > signals.id)))",
                "CREATE UNIQUE INDEX signals_one_active ON signals (trader_id, symbol) "
                "WHERE status IN ('new', 'watching', 'ready')",
            ],
            reverse_sql=["DROP INDEX signals_one_active"],
        ),
    ]
