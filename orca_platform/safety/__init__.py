"""What keeps clinic data safe across updates: the stack's history, prod floors, the admission guard's rules, the
first-deploy bootstrap and the maintenance window.

Owns: history (reading the last run's orcaHistory, refusing lossy transitions), floors and prod_floors (what prod may
never go below; prod_floors is standard-library only because the audit rules read it), admission (the CEL guard's
expressions), bootstrap, maintenance.
May import: orca_platform.model, orca_platform.plan, orca_platform.backup, orca_platform.conventions. Never Pulumi.
"""
