"""Pure core of orca-platform: input models, settings and planning.

Nothing in this package imports Pulumi. Data flows one way:
YAML / stack config -> validated pydantic models -> pure plans -> components.
"""
