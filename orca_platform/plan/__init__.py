"""Decisions taken before any resource exists: the stack plan and everything it weighs.

Owns: a clinic's plan (clinic), the stack plan (stack_plan), addresses (addressing), front doors, storage strategies,
capacity and placement, walls, cost, names (naming) and staggered schedules.
May import: orca_platform.model, orca_platform.backup, orca_platform.conventions, and these modules of other rooms that
a plan checks against: orca_platform.safety.floors, orca_platform.safety.maintenance, orca_platform.monitoring.alerts.
Never Pulumi.
"""
