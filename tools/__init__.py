"""Offline tooling: run the real program under Pulumi mocks, render, plan, audit, benchmark."""
