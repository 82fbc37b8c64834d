"""Playbooks: response workflows in YAML (docs/playbooks.md).

A feature package: it imports only the spine (`watchkeeper`). Definitions are loaded and
validated by `loader`, matched against alerts by `triggers`, and run step by step by `engine`
with durable state in the store (`watchkeeper.store.runs`).
"""
