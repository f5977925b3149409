"""The words of a text that carry its meaning, and its numbers, in English and Spanish.

Shared by the pick of evidence sentences (`storage.documents.evidence`) and the check of
generated sentences against their sources (`storage.documents.support`): both ask how
much of one text's content another holds. Words are compared by a crude stem (accents
folded, a final "s" dropped, cut to `STEM_CHARS` letters) so "propuso" meets
"propuesta" and "deployments" meets "deployment" without a stemmer per language.
Numbers are compared by value as written, with thousands separators removed ("50.000",
"50,000" and "50000" are one number) and a decimal comma read as a point ("1,6" is 1.6).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

STEM_CHARS = 5

_STOP = """
    a an the and or but if then than that this these those there here of to in on at by
    for from with without about into over under as is are was were be been being am do
    does did done have has had having it its they them their he she his her we our you
    your i me my mine not no yes so such can could should would will shall may might must
    what which who whom whose when where why how all any each every some more most much
    many few other only also just very too again both either neither per via up down out
    off one ones say says said tell please according document documents doc docs text
    passage passages answer question
    el la los las lo un una unos unas y o u pero si sino que de del al a en con sin por
    para sobre entre hasta desde como es son era eran ser sido esta este estos estas ese
    esa esos esas eso esto aquel hay ha han he hemos fue fueron se su sus le les me te nos
    mi mis tu tus nuestro nuestra nuestros nuestras qué quien quién quienes cual cuál
    cuales cuáles cuando cuándo donde dónde cómo cuanto cuánto cuánta cuántos cuántas muy
    mas más menos tambien también ya no sí ni dice dicen segun según documento documentos
    texto pregunta respuesta puede pueden hace hacer
"""


def fold(text: str) -> str:
    """`text` lower-cased with its accents removed ("Según" -> "segun")."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


STOP_WORDS = frozenset(fold(word) for word in _STOP.split())

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.UNICODE)
# A number as written: 50.000, 1,6, 8443, 02:00, 3.5, 1.200
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def _stem(word: str) -> str:
    # A plural's "s" off first: "uses" meets "use", "días" meets "día".
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    return word[:STEM_CHARS]


def stems(text: str) -> set[str]:
    """The stems of the content words of `text` (stop words and one-letter words left out)."""
    words = (fold(word) for word in _WORD.findall(text))
    return {_stem(word) for word in words if len(word) > 1 and word not in STOP_WORDS}


def _number_value(raw: str) -> str:
    if ":" in raw:  # a time: 02:00 and 2:00 are the same
        return ":".join(str(int(part)) for part in raw.split(":"))
    groups = re.split(r"[.,]", raw)
    # 50.000 / 50,000 / 1.200.000: separators between groups of three digits.
    if len(groups) > 1 and all(len(group) == 3 for group in groups[1:]):
        return str(int("".join(groups)))
    if len(groups) == 2:  # 1,6 or 3.5
        whole, fraction = groups
        fraction = fraction.rstrip("0")
        return f"{int(whole)}.{fraction}" if fraction else str(int(whole))
    return ".".join(str(int(group)) for group in groups)


def numbers(text: str) -> set[str]:
    """The numbers written in `text`, each as a canonical string of its value."""
    return {_number_value(raw) for raw in _NUMBER.findall(text)}


def overlap(part: Iterable[str], whole: set[str]) -> float:
    """The share of `part` found in `whole` (1.0 for an empty `part`)."""
    items = set(part)
    return len(items & whole) / len(items) if items else 1.0
