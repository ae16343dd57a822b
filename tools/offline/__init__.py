"""The offline engine: the real __main__.py under Pulumi mocks (engine), what it renders (synth, rendered), stack
exports in the engine's own format (stack_export) and URNs as the engine makes them (engine_urns).

May import: the core (orca_platform) and tools.cli. Every other tool room builds on this one; it imports none of them.
"""
