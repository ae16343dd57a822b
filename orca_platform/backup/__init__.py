"""Backups, continuous WAL archiving and point-in-time recovery as data: names, scripts and the restorable window."""
