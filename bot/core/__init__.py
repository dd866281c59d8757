"""The platform-free bot: what happens to a posted meme, a correction or a command.

Adapters (Telegram, Discord) translate platform events into the dataclasses of
`bot.core.messages`, call `MemeService`, and render the `Reply` it returns.
"""
