"""The tools image (backup.toolsImage): its offline build with buildah (build), the commands the rendered scripts
call (commands) and its contract with them and with the README (contract), and what can be scanned here (scan).

May import: tools.reports (generated blocks) and the standard library. No other tool room imports it.
"""
