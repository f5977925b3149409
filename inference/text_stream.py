"""Turning sampled tokens into text deltas: UTF-8 across token boundaries, stop strings."""

from __future__ import annotations

import codecs


class StopStringFilter:
    """Holds back text that might be the start of a stop string.

    `feed` returns the text that is safe to show; once a stop string appears, `stopped`
    is set and nothing from it onwards is ever shown.
    """

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(stop for stop in stops if stop)
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return text
        self._held += text
        cut = min((i for i in (self._held.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            shown, self._held = self._held[:cut], ""
            return shown
        keep = self._longest_stop_prefix_suffix()
        shown = self._held[: len(self._held) - keep]
        self._held = self._held[len(self._held) - keep :]
        return shown

    def flush(self) -> str:
        """Text still held back when generation ends for another reason."""
        held, self._held = ("" if self.stopped else self._held), ""
        return held

    def _longest_stop_prefix_suffix(self) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._held)), longest, -1):
                if self._held.endswith(stop[:size]):
                    longest = size
                    break
        return longest


class TokenTextDecoder:
    """Bytes of token pieces to str, keeping a multi-byte character split across tokens."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        return self._decoder.decode(piece)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
