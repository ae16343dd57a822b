"""orca-platform's CrossGuard policy pack. `__main__.py` is the pack's entry point; `orca_policies` is importable."""
