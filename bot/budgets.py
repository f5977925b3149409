"""Daily token budgets, as the person asking is told about them."""

from __future__ import annotations

from bot.chat_settings import ChatSettings
from bot.errors import BudgetExhausted
from bot.scope import Scope
from storage.token_budget import TokenBudget


async def check_budget(budget: TokenBudget, scope: Scope, chat: ChatSettings) -> None:
    """Refuse when the person's or the community's budget for today is used (0: none)."""
    if not (chat.daily_tokens_person or chat.daily_tokens_community):
        return
    used = await budget.used(scope.user_key, scope.server_key)
    resets = duration_text(used.resets_in_s)
    if chat.daily_tokens_person and used.person >= chat.daily_tokens_person:
        raise BudgetExhausted(
            f"You have used your {chat.daily_tokens_person} tokens for today; the "
            f"budget resets in {resets} (midnight UTC). /usage shows it."
        )
    if chat.daily_tokens_community and used.community >= chat.daily_tokens_community:
        raise BudgetExhausted(
            f"This community has used its {chat.daily_tokens_community} tokens for "
            f"today; the budget resets in {resets} (midnight UTC)."
        )


def duration_text(seconds: float) -> str:
    """ "5 h 12 min", or "12 min" under an hour (at least 1 min)."""
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
