"""What a 429 from Discord does to the pacing windows, beyond discord.py's own retry.

discord.py answers a 429 by waiting and retrying the refused call; the other replies to
the same destination would run into the same limit meanwhile. So the destination's
window is paused too. A follow-up to a slash command is a webhook call, whose path names
the interaction's token rather than the channel: the bookkeeping remembers, while a
command is answered, which channel its token stands for. Apart from the adapter because
none of it is about translating events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bot.delivery.pacing import Pacing
from bot.platforms.discord.client import channel_in_path, webhook_token_in_path
from bot.platforms.discord.routing import destination_key


class RateLimitPauses:
    """Pauses `pacer`'s window of a destination Discord refused a call to; `seen` counts
    the 429s met."""

    def __init__(self, pacer: Pacing) -> None:
        self._pacer = pacer
        # Interaction token -> pacing window, so a 429 on a follow-up pauses its channel.
        self._webhook_destinations: dict[str, str] = {}
        self.seen = 0

    @contextmanager
    def interaction(self, token: str, channel_id: int) -> Iterator[None]:
        """While in the block, a 429 on the interaction's follow-ups pauses its channel."""
        self._webhook_destinations[token] = destination_key(channel_id)
        try:
            yield
        finally:
            self._webhook_destinations.pop(token, None)

    async def rate_limited(self, path: str, retry_after_s: float, retried: bool) -> None:
        """discord.py answers a 429 by waiting and retrying; pause the destination too, so
        the other replies there wait instead of running into the same limit."""
        channel = channel_in_path(path)
        key = (
            destination_key(int(channel))
            if channel
            else self._webhook_destinations.get(webhook_token_in_path(path) or "")
        )
        self.seen += 1
        if key is not None and retried:
            # discord.py sends the refused call again once `retry_after_s` is over, outside
            # the window's count (which noted the call when it was first made): count that
            # retry too, so the windows around it stay within the budget.
            window = self._pacer.window(key)
            await window.pause(retry_after_s)
            await window.note_call(self._pacer.clock.now() + retry_after_s)
