"""Mistral DSL v2 workbooks: the only place where the order of DR steps lives."""
