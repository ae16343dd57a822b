"""Backups of a clinic's database: the scripts the backup Jobs run, their schedules and retention, and what the ORCA
image does with its volume (state directories, markers, the stop script); continuous WAL archiving and
point-in-time recovery (pitr: settings and scripts; window: the restorable window and the check of a target).

May import: the standard library and orca_platform.conventions only, so every room above can use it.
"""
