"""Rendering OpenAI-style messages into a prompt with the model's own chat template.

GGUF files carry their Hugging Face chat template (Jinja) in the metadata key
`tokenizer.chat_template`, so any GGUF chat model formats its prompts the way it was
trained. Models without one fall back to ChatML.
"""

from __future__ import annotations

from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ChatTemplate:
    def __init__(self, template: str | None, bos_token: str, eos_token: str) -> None:
        self.source = template or CHATML
        self._formatter = Jinja2ChatFormatter(
            template=self.source, eos_token=eos_token, bos_token=bos_token
        )
        self.eos_token = eos_token

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The prompt text, ending where the assistant's answer starts."""
        result = self._formatter(messages=messages, tools=tools or None)  # type: ignore[arg-type]
        return str(result.prompt)
