"""Errors raised by `inference`.

InferenceError               base class; `str(exc)` says what to do
├── ModelNotFound            the GGUF file is missing or unreadable
├── InvalidJob               bad sampling values or messages (that job only)
├── PoolUnavailable          no worker is alive to take the job
└── JobFailed                a worker reported an error for the job
"""


class InferenceError(Exception):
    """Base class for inference failures."""


class ModelNotFound(InferenceError):
    pass


class InvalidJob(InferenceError):
    pass


class PoolUnavailable(InferenceError):
    pass


class JobFailed(InferenceError):
    pass
