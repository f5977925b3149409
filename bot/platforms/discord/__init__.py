"""The Discord adapter (discord.py). Nothing here imports discord.py: `bot.config` reads
`DiscordSettings` from `bot.platforms.discord.config` without loading the library."""
