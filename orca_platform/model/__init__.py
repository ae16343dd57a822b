"""What a person writes, read strictly: the tenants file, the stack settings, the catalogue, and their errors.

Owns: pydantic models of tenants.yaml and the stack config (tenants, settings, monitoring, fields), the catalogue of
VM sizes and prices, reading YAML (yamlio, config_file), cron and time-zone rules (schedule), and the errors that name
file, clinic and field (errors, schema_help).
May import: the standard library, pydantic, PyYAML, cronsim and orca_platform.conventions; nothing else of the core.
"""
