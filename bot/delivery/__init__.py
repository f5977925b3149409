"""The platform-neutral delivery layer: streamed replies within a platform's limits.

`transport` is what a platform implements, `pacing` the shared call budgets and clock,
`stream` the reply sink that turns a streamed answer into paced sends and edits.
"""

from bot.delivery.pacing import CallWindow, Clock, MonotonicClock, Pacer
from bot.delivery.stream import StreamingReply, status_line
from bot.delivery.transport import (
    DeliveryError,
    DeliveryLimits,
    DestinationGone,
    FormattingRejected,
    MessageGone,
    RetryLater,
    Transport,
)

__all__ = [
    "CallWindow",
    "Clock",
    "DeliveryError",
    "DeliveryLimits",
    "DestinationGone",
    "FormattingRejected",
    "MessageGone",
    "MonotonicClock",
    "Pacer",
    "RetryLater",
    "StreamingReply",
    "Transport",
    "status_line",
]
