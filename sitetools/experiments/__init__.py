"""Experiments whose results the pages and figures show: each a named module with a test."""
