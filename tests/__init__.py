"""The test suite, laid out like the package it tests (tests/ops for lth_fast/ops, ...).

tests/ and each folder under it are packages, so pytest (in its default `prepend` import
mode) puts the repository root on sys.path and every test imports its helpers the same way:
`from tests.helpers.ops import bits`. Scripts that tests run as subprocesses (tests/scripts)
are started with the repository root on PYTHONPATH (tests.helpers.ROOT), so they import them
the same way too."""
