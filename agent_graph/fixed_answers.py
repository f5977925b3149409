"""What the agent says itself, without the model, in the language of the question.

These answers replace what a small model would make up when a tool could not help: a
search that could not be made, a calculation refused, documents that say nothing.
English or Spanish, as `storage.documents.language` reads the question (anything else
gets English); a tool's own reason ("division by zero") is quoted as the tool gave it.
"""

from __future__ import annotations

from typing import Final, Literal

from storage.documents.language import text_search_config

AnswerKey = Literal[
    "web_off",
    "web_failed",
    "web_failed_from_memory",
    "calculator_failed",
    "documents_failed",
    "tool_failed",
    "no_passages",
    "unchecked_arithmetic",
]

_ANSWERS: Final[dict[AnswerKey, dict[str, str]]] = {
    "web_off": {
        "en": "I can't search the web here (web search is switched off), so I can't look "
        "that up. I'd rather not guess at something that may have changed.",
        "es": "Aquí no puedo buscar en la web (la búsqueda web está desactivada), así que no "
        "puedo consultarlo. Prefiero no adivinar algo que puede haber cambiado.",
    },
    "web_failed": {
        "en": "I couldn't search the web ({reason}), so I can't look that up right now. "
        "I'd rather not guess at something that may have changed.",
        "es": "No pude buscar en la web ({reason}), así que ahora no puedo consultarlo. "
        "Prefiero no adivinar algo que puede haber cambiado.",
    },
    "web_failed_from_memory": {
        "en": "(I couldn't search the web ({reason}); this is from what I know, unchecked.)\n\n",
        "es": "(No pude buscar en la web ({reason}); esto es lo que sé, sin comprobar.)\n\n",
    },
    "calculator_failed": {
        "en": "I can't calculate {expression}: {reason}.",
        "es": "No puedo calcular {expression}: {reason}.",
    },
    "documents_failed": {
        "en": "I couldn't search this community's documents ({reason}).",
        "es": "No pude buscar en los documentos de esta comunidad ({reason}).",
    },
    "tool_failed": {
        "en": "The {name} tool failed ({reason}).",
        "es": "La herramienta {name} falló ({reason}).",
    },
    "unchecked_arithmetic": {
        "en": "(I couldn't turn this into a calculation, so the calculator did not check "
        "this; the numbers below are unchecked.)\n\n",
        "es": "(No pude convertir esto en un cálculo, así que la calculadora no lo ha "
        "comprobado; los números de abajo no están verificados.)\n\n",
    },
    "no_passages": {
        "en": "This community's documents don't say anything about that.",
        "es": "Los documentos de esta comunidad no dicen nada sobre eso.",
    },
}


def say(key: AnswerKey, question: str, **values: str) -> str:
    """The answer `key`, in the language of `question`, with `values` filled in."""
    language = "es" if text_search_config(question, ("english", "spanish")) == "spanish" else "en"
    return _ANSWERS[key][language].format(**values)
