"""Telegram: the adapter (`adapter.TelegramAdapter`), its transport and its settings.

Importing this package does not import python-telegram-bot: `bot.config` reads
`config.TelegramSettings` whether or not Telegram is used.
"""
