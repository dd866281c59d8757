"""The Telegram adapter: python-telegram-bot 22 handlers that translate updates for
`bot.core.service.MemeService` and render its replies."""
