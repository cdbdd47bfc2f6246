"""Native parts of Sluice: C versions of the per-row hot paths (see each module's doc).

Everything else is in pyproject.toml. The extensions are optional: without a C compiler the
install still succeeds and Sluice runs the pure-Python codecs, which produce the same values
and bytes (the unit tests compare the two), only slower.
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-unused-function"]

setup(
    ext_modules=[
        Extension(
            "schemas._rowcodec", ["schemas/_rowcodec.c"], optional=True, extra_compile_args=_FLAGS
        ),
        Extension(
            "source_connectors.mysql._binlog_rows",
            ["source_connectors/mysql/_binlog_rows.c"],
            optional=True,
            extra_compile_args=_FLAGS,
        ),
        Extension(
            "sink_connectors.mysql._sqltext",
            ["sink_connectors/mysql/_sqltext.c"],
            optional=True,
            extra_compile_args=_FLAGS,
        ),
    ]
)
