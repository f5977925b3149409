"""Where people talk to the bot: the terminal, Telegram and Discord.

Each platform module only translates between its library and the platform-neutral core
(`bot.chat_service`, `bot.commands`, `bot.delivery`). Nothing here imports a platform
library at import time: `bot.config` reads the platforms' settings without loading them.
"""
