from tortoise import migrations
from tortoise.migrations import operations as ops
from app.domain.decision import AnalysisEngineKind, DecisionAction
from app.domain.decision_quality import Outcome
from app.domain.enums import Side, SignalStatus
from app.domain.llm import CallOutcome, Purpose
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0002_signal_queue')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Decision',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('signal', fields.ForeignKeyField('models.Signal', source_field='signal_id', db_constraint=True, to_field='id', related_name='decisions', on_delete=OnDelete.CASCADE)),
                ('trader', fields.ForeignKeyField('models.Trader', source_field='trader_id', db_constraint=True, to_field='id', related_name='decisions', on_delete=OnDelete.CASCADE)),
                ('action', fields.CharEnumField(description='ENTER_TRADE: enter_trade\nGOOD_SETUP: good_setup\nBAD_SETUP: bad_setup', enum_type=DecisionAction, max_length=12)),
                ('direction', fields.CharEnumField(description='LONG: long\nSHORT: short', enum_type=Side, max_length=8)),
                ('confidence', fields.FloatField()),
                ('reasoning', fields.TextField(unique=False)),
                ('setup', fields.TextField(default='', unique=False)),
                ('invalidation', fields.TextField(default='', unique=False)),
                ('entry', fields.DecimalField(null=True, max_digits=36, decimal_places=18)),
                ('stop_loss', fields.DecimalField(null=True, max_digits=36, decimal_places=18)),
                ('take_profits', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('supports', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('resistances', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('risk_reward', fields.DecimalField(null=True, max_digits=16, decimal_places=4)),
                ('engine', fields.CharEnumField(description='GEMINI: gemini\nRULES: rules\nCACHED: cached', enum_type=AnalysisEngineKind, max_length=8)),
                ('model', fields.CharField(null=True, max_length=100)),
                ('schema_version', fields.IntField()),
                ('prompt_hash', fields.CharField(null=True, max_length=64)),
                ('input_tokens', fields.IntField(default=0)),
                ('output_tokens', fields.IntField(default=0)),
                ('latency_ms', fields.FloatField(default=0)),
                ('fallback_reason', fields.TextField(null=True, unique=False)),
                ('invalid_reason', fields.TextField(null=True, unique=False)),
                ('repairs', fields.IntField(default=0)),
                ('as_of', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharEnumField(null=True, description='TARGET: target\nSTOP: stop\nNEITHER: neither\nUNLABELLED: unlabelled', enum_type=Outcome, max_length=10)),
                ('outcome_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outcome_candles', fields.IntField(null=True)),
                ('outcome_check_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'decisions', 'app': 'models', 'indexes': [Index(fields=['signal_id', 'created_at']), Index(fields=['trader_id', 'created_at']), Index(fields=['outcome_check_at'])], 'pk_attr': 'id', 'table_description': 'One analysis of a signal (app.domain.decision.Decision): its verdict and levels, the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LlmCall',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='llm_calls', on_delete=OnDelete.CASCADE)),
                ('trader_id', fields.UUIDField(null=True, db_index=True)),
                ('signal_id', fields.UUIDField(null=True)),
                ('purpose', fields.CharEnumField(description='ANALYSIS: analysis\nANALYSIS_REPAIR: analysis_repair\nGENERATION: generation\nGENERATION_REPAIR: generation_repair', enum_type=Purpose, max_length=20)),
                ('model', fields.CharField(max_length=100)),
                ('prompt_hash', fields.CharField(max_length=64)),
                ('attempt', fields.IntField()),
                ('outcome', fields.CharEnumField(description='OK: ok\nINVALID_ANSWER: invalid_answer\nBLOCKED: blocked\nTRUNCATED: truncated\nRATE_LIMITED: rate_limited\nSERVER_ERROR: server_error\nCLIENT_ERROR: client_error\nTIMEOUT: timeout\nTRANSPORT_ERROR: transport_error', enum_type=CallOutcome, max_length=16)),
                ('error', fields.TextField(null=True, unique=False)),
                ('input_tokens', fields.IntField()),
                ('output_tokens', fields.IntField()),
                ('latency_ms', fields.FloatField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'llm_calls', 'app': 'models', 'indexes': [Index(fields=['owner_id', 'created_at'])], 'pk_attr': 'id', 'table_description': 'One attempt of one model request (app.domain.llm.LlmCall): the record of what was'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LlmResponse',
            fields=[
                ('key', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('model', fields.CharField(max_length=100)),
                ('schema_version', fields.IntField()),
                ('prompt_hash', fields.CharField(max_length=64)),
                ('text', fields.TextField(unique=False)),
                ('input_tokens', fields.IntField()),
                ('output_tokens', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'llm_responses', 'app': 'models', 'pk_attr': 'key', 'table_description': "A model's answer kept by cache key (model, schema version, prompt hash), so the same"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SignalTransition',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('signal', fields.ForeignKeyField('models.Signal', source_field='signal_id', db_constraint=True, to_field='id', related_name='transitions', on_delete=OnDelete.CASCADE)),
                ('from_status', fields.CharEnumField(description='NEW: new\nWATCHING: watching\nREADY: ready\nENTERED: entered\nREJECTED: rejected\nCANCELLED: cancelled\nEXPIRED: expired', enum_type=SignalStatus, max_length=10)),
                ('to_status', fields.CharEnumField(description='NEW: new\nWATCHING: watching\nREADY: ready\nENTERED: entered\nREJECTED: rejected\nCANCELLED: cancelled\nEXPIRED: expired', enum_type=SignalStatus, max_length=10)),
                ('reason', fields.TextField(null=True, unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'signal_transitions', 'app': 'models', 'indexes': [Index(fields=['signal_id', 'at'])], 'pk_attr': 'id', 'table_description': "Every status change of a signal, with the engine clock's time and the reason."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Trader',
            name='min_risk_reward',
            field=fields.DecimalField(null=True, max_digits=12, decimal_places=4),
        ),
    ]
