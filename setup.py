"""The C part of the package; everything else is configured in pyproject.toml.

``spanstore._otlpscan`` (spanstore/fastscan.py says what it does) is built in place for
an editable install (``make install``), so the checkout imports it as the installed
``seqtrace`` command does.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "spanstore._otlpscan",
            sources=["spanstore/_otlpscan.c"],
            # -O2 and every warning; the CI build must stay warning-free.
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ]
)
