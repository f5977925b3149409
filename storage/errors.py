"""Errors raised by `storage`. Foreign exceptions (redis, psycopg, OS) are translated here.

StorageError                 base class; its message says what to do
├── DataDirError             the data directory cannot be created or written
├── ServiceStartError        an embedded server failed to start
└── ServiceUnavailable       a configured server cannot be reached
"""


class StorageError(Exception):
    """Base class for storage failures; `str(exc)` is one line a person can act on."""


class DataDirError(StorageError):
    pass


class ServiceStartError(StorageError):
    pass


class ServiceUnavailable(StorageError):
    pass
