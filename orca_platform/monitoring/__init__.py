"""Alerts: the Prometheus rule groups the platform installs and the checks of their schedules.

May import: orca_platform.model, orca_platform.plan.clinic, orca_platform.plan.naming, orca_platform.conventions.
Never Pulumi.
"""
