"""The platform-free bot: what happens to a posted meme, a correction or a command.

Adapters translate platform events into the dataclasses of `bot.core.messages`, call
`MemeService`, and hand the typed outcomes it returns (`bot.core.outcomes`) to
`bot.core.delivery`, which sends them through the adapter's `ChatPort`.
"""
