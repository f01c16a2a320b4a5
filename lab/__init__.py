"""The two-site lab for the demo, tests and benchmarks. Never imported by product code."""
