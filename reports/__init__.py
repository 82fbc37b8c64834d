"""MLPS 2.0 compliance reports: builders per section, Jinja2 templates, PDF, schedules, delivery.

A feature package: it imports only the spine (`watchkeeper`). docs/reports.md explains the
report types, sections, templates, schedules and delivery.
"""
