# Hand-written: the autodetector cannot express triggers, and SQLite and PostgreSQL write
# them differently, so this RunSQL picks the statements of the connection's dialect.
# The audit log is append-only (invariant 6): the database itself refuses to change or
# delete a row, whatever client asks.
from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = (
    [
        "CREATE TRIGGER trade_audit_log_no_update BEFORE UPDATE ON trade_audit_log "
        "BEGIN SELECT RAISE(ABORT, 'trade_audit_log is append-only'); END",
        "CREATE TRIGGER trade_audit_log_no_delete BEFORE DELETE ON trade_audit_log "
        "BEGIN SELECT RAISE(ABORT, 'trade_audit_log is append-only'); END",
    ],
    [
        "DROP TRIGGER IF EXISTS trade_audit_log_no_update",
        "DROP TRIGGER IF EXISTS trade_audit_log_no_delete",
    ],
)
POSTGRES = (
    [
        "CREATE FUNCTION trade_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'trade_audit_log is append-only'; END $$",
        "CREATE TRIGGER trade_audit_log_append_only BEFORE UPDATE OR DELETE ON trade_audit_log "
        "FOR EACH ROW EXECUTE FUNCTION trade_audit_log_append_only()",
    ],
    [
        "DROP TRIGGER IF EXISTS trade_audit_log_append_only ON trade_audit_log",
        "DROP FUNCTION IF EXISTS trade_audit_log_append_only()",
    ],
)


class RunSQLOfDialect(ops.RunSQL):
    """RunSQL with (forward, reverse) statements per dialect. Each statement is executed
    whole: SQLite's schema editor splits scripts on ";", which would cut a trigger body."""

    def __init__(self, by_dialect):
        super().__init__(sql=[], reverse_sql=[])
        self.by_dialect = by_dialect

    async def _run_each(self, state_editor, index):
        for statement in self.by_dialect[state_editor.client.capabilities.dialect][index]:
            if state_editor.collect_sql:
                state_editor.collected_sql.append(statement)
            else:
                await state_editor.client.execute_query(statement)

    async def database_forward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor:
            await self._run_each(state_editor, 0)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None):
        if state_editor:
            await self._run_each(state_editor, 1)


class Migration(migrations.Migration):
    dependencies = [("models", "0004_paper_trading")]

    initial = False

    operations = [RunSQLOfDialect({"sqlite": SQLITE, "postgres": POSTGRES})]
