"""Speech to text on this host (Whisper through faster-whisper), for every platform.

`service.SpeechToText` transcribes a clip; `replies.VoiceReplies` answers a voice message
through the chat path; `cli` is `python -m bot transcribe`. Nothing is imported here, so
that the settings can name the languages without loading PyAV.
"""
