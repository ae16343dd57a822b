"""The deploy path and what an operator runs around it: the preview gate (gate, its advice, its vocabulary in
gate_model), what a change does (diff) and retiring a clinic (decommission).

May import: the core, tools.offline, tools.reports and tools.cli. Never tools.checks or tools.audit: the gate judges a
preview on its own evidence.
"""
