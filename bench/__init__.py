"""`make bench`: timing of the offline program run against the SDK's own floor (see bench/run.py)."""
