"""Speech to text on this host: a clip in, the words heard out.

`SpeechToText` is platform-neutral: a platform hands it the clip's bytes (after checking
the announced size with `check_size`), the chat path gets a `Transcript` or a
`SpeechError` whose message is the line to show. Whisper runs in a small thread pool, so
a long clip never holds up the event loop and replies to others; the model is loaded
once, by the first clip, not at start-up. Cancelling the awaiting task stops the
transcription at the end of the 30 s window Whisper is decoding (or before it starts,
when it is still waiting).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.speech.audio import Clip, decode
from bot.speech.config import SpeechSettings
from bot.speech.errors import (
    ClipTooLarge,
    NoSpeechFound,
    SpeechBusy,
    SpeechError,
    SpeechUnavailable,
)
from bot.speech.model_files import resolve_model_dir

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

NO_SPEECH = "No speech found in the clip (only silence, music or noise); record it again."


@dataclass(frozen=True)
class Transcript:
    text: str
    language: str  # ISO 639-1, as Whisper detected it or as it was asked for
    audio_seconds: float
    work_seconds: float


class _Cancelled(Exception):
    """Raised in the worker thread when the awaiting task was cancelled."""


class SpeechToText:
    def __init__(self, settings: SpeechSettings, data_dir: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.max_bytes = settings.max_mb * 1024 * 1024
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="speech")
        self._model: WhisperModel | None = None
        self._model_lock = threading.Lock()
        self._cancels: set[threading.Event] = set()
        self._pending = 0

    async def __aenter__(self) -> SpeechToText:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop running transcriptions at their next segment and drop waiting ones."""
        for cancel in list(self._cancels):
            cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    def check_size(self, size_bytes: int | None) -> None:
        """Refuse a file the platform announces as too large, before downloading it."""
        if size_bytes is not None and size_bytes > self.max_bytes:
            raise ClipTooLarge(
                f"The file is {size_bytes / 1024 / 1024:.1f} MB; voice messages and audio "
                f"files of at most {self.settings.max_mb} MB are transcribed."
            )

    async def transcribe(self, data: bytes, language: str | None = None) -> Transcript:
        """What is said in `data` (any audio format PyAV reads); `language` None: detect it."""
        if not self.settings.enabled:
            raise SpeechUnavailable("Voice messages are not transcribed on this bot.")
        self.check_size(len(data))
        if self._pending >= self.settings.workers + self.settings.max_waiting:
            raise SpeechBusy(
                "Too many voice messages are being transcribed; send it again in a minute."
            )
        cancel = threading.Event()
        self._cancels.add(cancel)
        self._pending += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._pool, self._transcribe_blocking, data, language, cancel
            )
        except (RuntimeError, _Cancelled) as exc:  # the pool was shut down: the bot is stopping
            raise SpeechUnavailable("The bot is stopping; send the clip again shortly.") from exc
        finally:
            # On cancellation the thread may still be inside Whisper: let it stop there.
            cancel.set()
            self._cancels.discard(cancel)
            self._pending -= 1

    def _transcribe_blocking(
        self, data: bytes, language: str | None, cancel: threading.Event
    ) -> Transcript:
        started = time.perf_counter()
        clip = decode(data, self.settings.max_seconds)
        if cancel.is_set():
            raise _Cancelled
        text, detected = self._run_whisper(clip, language, cancel)
        if not text:
            raise NoSpeechFound(NO_SPEECH)
        return Transcript(text, detected, clip.seconds, time.perf_counter() - started)

    def _run_whisper(
        self, clip: Clip, language: str | None, cancel: threading.Event
    ) -> tuple[str, str]:
        model = self._load_model()
        try:
            segments, info = model.transcribe(
                clip.samples,
                language=language,
                beam_size=self.settings.beam_size,
                # Silero VAD drops silence and music before Whisper sees them, where
                # Whisper would otherwise invent words ("Thank you.", "♪").
                vad_filter=True,
                # Whisper's own "no speech" skip drops whole 30 s windows of real speech
                # (its probability sat at 0.6-0.65 on clear espeak-ng sentences); the VAD
                # above already removes what is not speech.
                no_speech_threshold=None,
                condition_on_previous_text=False,
                # No fallback to sampling at higher temperatures: on a window it finds
                # hard it decodes up to six times (4-5x the time, measured) for a worse
                # text; one greedy pass keeps a clip's cost bounded and repeatable.
                temperature=0.0,
            )
            words: list[str] = []
            for segment in segments:  # a generator: each step decodes one window
                if cancel.is_set():
                    raise _Cancelled
                words.append(segment.text.strip())
        except (_Cancelled, SpeechError):
            raise
        except Exception as exc:  # CTranslate2 raises plain RuntimeError/ValueError
            log.exception("Whisper failed on a %.1f s clip", clip.seconds)
            raise SpeechUnavailable(
                "The speech model failed on this clip; try again, or send text."
            ) from exc
        text = " ".join(word for word in words if _has_words(word))
        return text, str(info.language)

    def _load_model(self) -> WhisperModel:
        with self._model_lock:
            if self._model is None:
                self._model = self._build_model()
            return self._model

    def _build_model(self) -> WhisperModel:
        import ctranslate2
        from faster_whisper import WhisperModel

        folder = resolve_model_dir(self.settings.model_dir, self.data_dir)
        device = self.settings.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = self.settings.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        options: dict[str, Any] = {"num_workers": self.settings.workers}
        if device == "cpu":
            options["cpu_threads"] = self.settings.cpu_threads
        started = time.perf_counter()
        try:
            model = WhisperModel(str(folder), device=device, compute_type=compute_type, **options)
        except Exception as exc:  # CTranslate2 reports a bad folder or device as RuntimeError
            log.error("cannot load the speech model from %s: %s", folder, exc)
            raise SpeechUnavailable(
                f"The speech model cannot be loaded ({exc}); fix BOT_SPEECH_MODEL_DIR or "
                "BOT_SPEECH_DEVICE."
            ) from exc
        log.info(
            "speech model %s loaded on %s (%s) in %.1f s",
            folder,
            device,
            compute_type,
            time.perf_counter() - started,
        )
        return model


def _has_words(text: str) -> bool:
    """False for what Whisper writes over music or noise: "♪", "...", "[Music]"."""
    stripped = text.strip()
    if stripped.startswith(("[", "(")) and stripped.endswith(("]", ")")):
        return False
    return any(char.isalnum() for char in stripped)
