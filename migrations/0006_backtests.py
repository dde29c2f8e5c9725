from tortoise import migrations
from tortoise.migrations import operations as ops
from app.domain.enums import BacktestStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_audit_log_append_only')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Backtest',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='backtests', on_delete=OnDelete.CASCADE)),
                ('trader', fields.ForeignKeyField('models.Trader', source_field='trader_id', null=True, db_constraint=True, to_field='id', related_name='backtests', on_delete=OnDelete.SET_NULL)),
                ('status', fields.CharEnumField(default=BacktestStatus.QUEUED, description='QUEUED: queued\nRUNNING: running\nDONE: done\nFAILED: failed\nCANCELLED: cancelled', enum_type=BacktestStatus, max_length=12)),
                ('request', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('progress', fields.FloatField(default=0.0)),
                ('closes_done', fields.IntField(default=0)),
                ('closes_total', fields.IntField(default=0)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('result', fields.JSONField(null=True, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'backtests', 'app': 'models', 'indexes': [Index(fields=['owner_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A backtest run: what was asked, how far it is, and when done its result document'},
            bases=['Model'],
        ),
    ]
