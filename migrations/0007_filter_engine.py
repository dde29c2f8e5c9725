# A new analysis engine, `filter` (no analysis: every signal entered), changes only the
# description of `decisions.engine` (a varchar of 8 holds "filter"). Made by the
# autodetector, then edited: on SQLite, which keeps no column comments, altering the field
# rebuilds the table and loses its indexes, so there the schema is left as it is; PostgreSQL
# gets the new comment.
from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from app.domain.decision import AnalysisEngineKind


class AlterCommentOnly(ops.AlterField):
    """AlterField of a change no SQLite schema holds (a description): skipped there."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor and state_editor.client.capabilities.dialect != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("models", "0006_backtests")]

    initial = False

    operations = [
        AlterCommentOnly(
            model_name="Decision",
            name="engine",
            field=fields.CharEnumField(
                description="GEMINI: gemini\nRULES: rules\nCACHED: cached\nFILTER: filter",
                enum_type=AnalysisEngineKind,
                max_length=8,
            ),
        ),
    ]
