"""The C part of the package; everything else is configured in pyproject.toml.

``spanstore.decode._otlpscan`` (spanstore/decode/scan.py says what it does) is built in place for
an editable install (``make install``), so the checkout imports it as the installed
``seqtrace`` command does.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExtReplacing(build_ext):
    """Puts a rebuilt module into the source tree by renaming it over the old file.

    Copying over it in place would rewrite the shared library under any process that has
    it loaded (a running ``seqtrace serve``), which then crashes; a rename leaves those
    processes the old file.
    """

    def copy_file(self, infile: Any, outfile: Any, *args: Any, **kwargs: Any) -> Any:
        if not os.path.exists(outfile):
            return super().copy_file(infile, outfile, *args, **kwargs)
        partial = f"{outfile}.{os.getpid()}.tmp"
        _, copied = super().copy_file(infile, partial, *args, **kwargs)
        os.replace(partial, outfile)
        return outfile, copied


setup(
    cmdclass={"build_ext": BuildExtReplacing},
    ext_modules=[
        Extension(
            "spanstore.decode._otlpscan",
            sources=["spanstore/decode/_otlpscan.c"],
            # -O2 and every warning; the CI build must stay warning-free.
            extra_compile_args=["-O2", "-Wall", "-Wextra"],
        )
    ],
)
