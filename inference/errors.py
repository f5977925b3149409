"""Errors raised by `inference`.

InferenceError               base class; `str(exc)` says what to do
├── ModelNotFound            the GGUF file is missing or unreadable
├── InvalidJob               bad sampling values or messages (that job only)
├── PoolUnavailable          no worker is alive to take the job
│   └── PoolBusy             the queue is full; carries an estimated wait
├── JobFailed                a worker reported an error for the job
└── ModelServerError         the OpenAI-compatible model server failed or refused;
                             names the server's URL and, where it answered, its status
"""


class InferenceError(Exception):
    """Base class for inference failures."""


class ModelNotFound(InferenceError):
    pass


class InvalidJob(InferenceError):
    pass


class PoolUnavailable(InferenceError):
    pass


class PoolBusy(PoolUnavailable):
    def __init__(self, message: str, wait_s: float) -> None:
        super().__init__(message)
        self.wait_s = wait_s


class JobFailed(InferenceError):
    pass


class ModelServerError(InferenceError):
    pass
