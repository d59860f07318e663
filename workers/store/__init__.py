"""The identity store: the engine (SQLite or PostgreSQL, migrations at start-up), the tables,
the queries jobs and commands use (identity), and the mirror's one-transaction write path.
"""
