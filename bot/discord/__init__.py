"""The Discord adapter: a discord.py 2.x `AutoShardedClient` whose events are translated for
`bot.core.service.MemeService` and whose replies render the core's."""
