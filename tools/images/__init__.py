"""The tools image (backup.toolsImage): its build (buildah, offline), its contract with the scripts, its scan."""
