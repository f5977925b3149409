"""Word problems for `benchmarks/tool_eval.py`: small arithmetic told in words, powers with
decimal exponents and roots to N decimal places, in English and Spanish. The last two
cannot be read whole: they must reach no tool (the model answers under a note saying
its number is unchecked), never a web search."""

from __future__ import annotations

from benchmarks.tool_eval_data import Case

WORD_PROBLEMS: tuple[Case, ...] = (
    Case(
        "If I have 17 apples and give away 5, then buy 12 more, how many do I have?",
        "en",
        "calculator",
        "24",
    ),
    Case("Raise 37 to the power 0.4", "en", "calculator", "4.23916859977"),
    Case("Compute the square root of 2 to 4 decimal places", "en", "calculator", "1.4142"),
    Case(
        "I had 50 euros, spent 12 on lunch and then earned 30. How much do I have?",
        "en",
        "calculator",
        "68",
    ),
    Case(
        "A class has 24 students and each brings 3 pencils. How many pencils in total?",
        "en",
        "calculator",
        "72",
    ),
    Case(
        "We have 120 cookies to share among 8 kids, how many does each get?",
        "en",
        "calculator",
        "15",
    ),
    Case("What is 20 percent of 150?", "en", "calculator", "30"),
    Case("Tengo 20 caramelos, regalo 4 y compro 10 más. ¿Cuántos tengo?", "es", "calculator", "26"),
    Case("Tengo 3 cajas de 12 huevos y uso la mitad, ¿cuántos quedan?", "es", "calculator", "18"),
    Case("Tengo 8 libros y mi hermana me regala 4, ¿cuántos tengo?", "es", "calculator", "12"),
    Case("¿Cuál es la raíz cuadrada de 2 con 5 decimales?", "es", "calculator", "1.41421"),
    Case("¿Cuánto es 37 elevado a la 0.4?", "es", "calculator", "4.23916859977"),
    Case("If I have 17 apples and give 5 to Tom and 3 to Ann, how many do I have?", "en", "none"),
    Case("Compré 3 camisas a 12 euros y 2 gorras a 8 euros, ¿cuánto gasté?", "es", "none"),
)
