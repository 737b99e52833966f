"""The ``sptrain`` command line."""
