"""The database side of the engine's ports: traders and signals as `app.domain` values.

Each repository maps its rows to and from the value objects the stages take, in one place,
so no stage ever holds an ORM row and the in-memory repositories of a backtest can stand in
for these without the stages noticing.
"""
