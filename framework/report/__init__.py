"""Renderings of the certification record: HTML report, run-to-run diff, JUnit."""
