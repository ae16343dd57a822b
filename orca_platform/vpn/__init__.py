"""The clinics' VPN: ranges the platform assigns, the concentrator's tunnels and their rendered configuration.

May import: the standard library and orca_platform.conventions. Never Pulumi.
"""
