"""sqlrunner's benchmarks (issue 10): run them with ``python -m bench --size quick|large``."""
