from tortoise import migrations
from tortoise.migrations import operations as ops
from app.domain.enums import ExitReason, Liquidity, OrderPurpose, TradeStatus, TradingMode
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import UniqueConstraint

class Migration(migrations.Migration):
    dependencies = [('models', '0003_analysis')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Fill',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=80)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='fills', on_delete=OnDelete.CASCADE)),
                ('trade', fields.ForeignKeyField('models.Trade', source_field='trade_id', db_constraint=True, to_field='id', related_name='fills', on_delete=OnDelete.CASCADE)),
                ('trader', fields.ForeignKeyField('models.Trader', source_field='trader_id', db_constraint=True, to_field='id', related_name='fills', on_delete=OnDelete.CASCADE)),
                ('amount', fields.DecimalField(max_digits=36, decimal_places=18)),
                ('price', fields.DecimalField(max_digits=36, decimal_places=18)),
                ('expected_price', fields.DecimalField(null=True, max_digits=36, decimal_places=18)),
                ('fee', fields.DecimalField(max_digits=36, decimal_places=18)),
                ('fee_currency', fields.CharField(max_length=16)),
                ('liquidity', fields.CharEnumField(description='MAKER: maker\nTAKER: taker', enum_type=Liquidity, max_length=8)),
                ('time', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'fills', 'app': 'models', 'indexes': [Index(fields=['trade_id', 'time']), Index(fields=['trader_id', 'time'])], 'pk_attr': 'id', 'table_description': 'One execution of an order, with the price expected beside the price got. Its id is'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Ledger',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('trader', fields.ForeignKeyField('models.Trader', source_field='trader_id', db_constraint=True, to_field='id', related_name='ledgers', on_delete=OnDelete.CASCADE)),
                ('mode', fields.CharEnumField(description='DEMO: demo\nLIVE: live', enum_type=TradingMode, max_length=8)),
                ('initial', fields.DecimalField(max_digits=36, decimal_places=18)),
                ('cash', fields.DecimalField(max_digits=36, decimal_places=18)),
                ('fees_paid', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('realised_pnl', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('positions', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('marks', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('marked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ledgers', 'app': 'models', 'unique_together': (('trader_id', 'mode'),), 'pk_attr': 'id', 'table_description': "A trader's own account in one mode (`app.domain.ledger.Ledger`): its positions are"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Performance',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('trader', fields.ForeignKeyField('models.Trader', source_field='trader_id', db_constraint=True, to_field='id', related_name='performance', on_delete=OnDelete.CASCADE)),
                ('mode', fields.CharEnumField(description='DEMO: demo\nLIVE: live', enum_type=TradingMode, max_length=8)),
                ('started_at', fields.BigIntField(null=True)),
                ('open_positions', fields.IntField(default=0)),
                ('closed', fields.IntField(default=0)),
                ('wins', fields.IntField(default=0)),
                ('gross_profit', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('gross_loss', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('closed_cost', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('fees_paid', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('exposure_ms', fields.BigIntField(default=0)),
                ('exposed_since', fields.BigIntField(null=True)),
                ('snapshots', fields.IntField(default=0)),
                ('first_snapshot_at', fields.BigIntField(null=True)),
                ('last_equity', fields.DecimalField(null=True, max_digits=36, decimal_places=18)),
                ('last_snapshot_at', fields.BigIntField(null=True)),
                ('peak_equity', fields.DecimalField(null=True, max_digits=36, decimal_places=18)),
                ('max_drawdown', fields.DecimalField(default=0, max_digits=36, decimal_places=18)),
                ('returns', fields.IntField(default=0)),
                ('return_sum', fields.DecimalField(default=0, max_digits=40, decimal_places=24)),
                ('return_squares', fields.DecimalField(default=0, max_digits=40, decimal_places=24)),
                ('downside_squares', fields.DecimalField(default=0, max_digits=40, decimal_places=24)),
            ],
            options={'table': 'performance', 'app': 'models', 'unique_together': (('trader_id', 'mode'),), 'pk_attr': 'id', 'table_description': "The running aggregate of a trader's trading in one mode (`app.domain.metrics."},
            bases=['Model'],
        ),
        ops.RemoveIndex(
            model_name='EquitySnapshot',
            name=None,
            fields=['trader_id', 'mode', 'time'],
        ),
        ops.AddConstraint(
            model_name='EquitySnapshot',
            constraint=UniqueConstraint(fields=('trader_id', 'mode', 'time'), name=None),
        ),
        ops.AlterModelOptions(
            name='Order',
            options={'table': 'orders', 'app': 'models', 'indexes': [Index(fields=['trader_id', 'status']), Index(fields=['status', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One order (`app.domain.orders.Order`). Its client order id is assigned and stored,'},
        ),
        ops.AddField(
            model_name='Order',
            name='exit_reason',
            field=fields.CharEnumField(null=True, description='STOP_LOSS: stop_loss\nTAKE_PROFIT: take_profit\nTRAILING_STOP: trailing_stop\nEXIT_SIGNAL: exit_signal\nANALYSIS: analysis\nMANUAL: manual\nEMERGENCY: emergency\nDRAWDOWN: drawdown', enum_type=ExitReason, max_length=16),
        ),
        ops.AddField(
            model_name='Order',
            name='expected_price',
            field=fields.DecimalField(null=True, max_digits=36, decimal_places=18),
        ),
        ops.AddField(
            model_name='Order',
            name='expires_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Order',
            name='purpose',
            field=fields.CharEnumField(default=OrderPurpose.ENTRY, description='ENTRY: entry\nEXIT: exit', enum_type=OrderPurpose, max_length=8),
        ),
        ops.AddField(
            model_name='Order',
            name='reason',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['status', 'created_at']),
        ),
        ops.AlterModelOptions(
            name='Trade',
            options={'table': 'trades', 'app': 'models', 'indexes': [Index(fields=['trader_id', 'mode', 'status']), Index(fields=['trader_id', 'opened_at']), Index(fields=['status', 'trader_id'])], 'pk_attr': 'id', 'table_description': 'One position from its entry order to its exit (`app.domain.trade.Trade`).'},
        ),
        ops.AlterField(
            model_name='Trade',
            name='entry_price',
            field=fields.DecimalField(null=True, max_digits=36, decimal_places=18),
        ),
        ops.AlterField(
            model_name='Trade',
            name='exit_reason',
            field=fields.CharEnumField(null=True, description='STOP_LOSS: stop_loss\nTAKE_PROFIT: take_profit\nTRAILING_STOP: trailing_stop\nEXIT_SIGNAL: exit_signal\nANALYSIS: analysis\nMANUAL: manual\nEMERGENCY: emergency\nDRAWDOWN: drawdown', enum_type=ExitReason, max_length=16),
        ),
        ops.AlterField(
            model_name='Trade',
            name='status',
            field=fields.CharEnumField(default=TradeStatus.OPEN, description='PENDING: pending\nOPEN: open\nCLOSED: closed\nCANCELLED: cancelled', enum_type=TradeStatus, max_length=10),
        ),
        ops.AddField(
            model_name='Trade',
            name='close_requested',
            field=fields.CharEnumField(null=True, description='STOP_LOSS: stop_loss\nTAKE_PROFIT: take_profit\nTRAILING_STOP: trailing_stop\nEXIT_SIGNAL: exit_signal\nANALYSIS: analysis\nMANUAL: manual\nEMERGENCY: emergency\nDRAWDOWN: drawdown', enum_type=ExitReason, max_length=16),
        ),
        ops.AddField(
            model_name='Trade',
            name='entry_cost',
            field=fields.DecimalField(default=0, max_digits=36, decimal_places=18),
        ),
        ops.AddField(
            model_name='Trade',
            name='exit_amount',
            field=fields.DecimalField(default=0, max_digits=36, decimal_places=18),
        ),
        ops.AddField(
            model_name='Trade',
            name='exit_attempts',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Trade',
            name='exit_proceeds',
            field=fields.DecimalField(default=0, max_digits=36, decimal_places=18),
        ),
        ops.AddField(
            model_name='Trade',
            name='highest_price',
            field=fields.DecimalField(null=True, max_digits=36, decimal_places=18),
        ),
        ops.AddField(
            model_name='Trade',
            name='trailing_stop',
            field=fields.DecimalField(null=True, max_digits=12, decimal_places=4),
        ),
        ops.AddIndex(
            model_name='Trade',
            index=Index(fields=['status', 'trader_id']),
        ),
        ops.AlterModelOptions(
            name='TradeAuditLog',
            options={'table': 'trade_audit_log', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Append-only record of every order action (invariant 6). Besides these guards, the'},
        ),
        ops.AddField(
            model_name='Trader',
            name='cooldown_candles',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Trader',
            name='exit_filter_code',
            field=fields.TextField(default='', unique=False),
        ),
        ops.AddField(
            model_name='Trader',
            name='review_candles',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Trader',
            name='stop_loss_guard',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Trader',
            name='stop_loss_guard_candles',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Trader',
            name='trailing_stop',
            field=fields.DecimalField(null=True, max_digits=12, decimal_places=4),
        ),
        # Hand-written: altering a column rebuilds the table on SQLite, and Tortoise does not
        # recreate the table's indexes then (PostgreSQL keeps them).
        ops.RunSQL(
            [
                'CREATE INDEX IF NOT EXISTS "idx_trades_trader__7afd97" '
                'ON "trades" ("trader_id", "mode", "status")',
                'CREATE INDEX IF NOT EXISTS "idx_trades_trader__2efdb2" '
                'ON "trades" ("trader_id", "opened_at")',
            ],
            reverse_sql=[],
        ),
    ]
