"""Native parts of Sluice: C versions of the per-row hot paths (see each module's doc).

Everything else is in pyproject.toml. The extensions are optional: without a C compiler the
install still succeeds and Sluice runs the pure-Python codecs, which produce the same values
and bytes (the unit tests compare the two), only slower.
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-std=c11", "-Wall", "-Wno-unused-function"]


def _extension(module: str) -> Extension:
    """``a.b._c`` built from ``a/b/_c.c``; sluice_buf.h (schemas/) is shared by all."""
    return Extension(
        module,
        [module.replace(".", "/") + ".c"],
        optional=True,
        extra_compile_args=_FLAGS,
        include_dirs=["schemas"],
        depends=["schemas/sluice_buf.h"],
    )


setup(
    ext_modules=[
        _extension("schemas._rowcodec"),
        _extension("source_connectors.mysql._binlog_rows"),
        _extension("sink_connectors.mysql._sqltext"),
    ]
)
