"""Backups of a clinic's database: the scripts the backup Jobs run, their schedules and retention, and what the ORCA
image does with its volume (state directories, markers, the stop script).

May import: the standard library and orca_platform.conventions only, so every room above can use it.
"""
