"""What the platform tells people: the capacity and cost plan (plan, plan_report, plan_chart, plan_docs), a clinic's
connection card
(clinic_card), the network diagram, SVG drawing, generated README/docs blocks, and the ingress chart's mirror helper.

May import: the core, tools.offline and tools.cli. Never tools.deploy, tools.checks or tools.audit.
"""
