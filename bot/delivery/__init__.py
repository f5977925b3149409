"""The platform-neutral delivery layer: streamed replies within a platform's limits.

`transport` is what a platform implements, `pacing` the shared call budgets and clock,
`stream` the reply sink that turns a streamed answer into paced sends and edits.
"""

from bot.delivery.pacing import (
    CallBudget,
    CallWindow,
    Clock,
    MonotonicClock,
    Pacer,
    Pacing,
    SharedCallWindow,
    SharedPacer,
)
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
    "CallBudget",
    "CallWindow",
    "Clock",
    "DeliveryError",
    "DeliveryLimits",
    "DestinationGone",
    "FormattingRejected",
    "MessageGone",
    "MonotonicClock",
    "Pacer",
    "Pacing",
    "RetryLater",
    "SharedCallWindow",
    "SharedPacer",
    "StreamingReply",
    "Transport",
    "status_line",
]
