"""What tests (and benchmarks) share; nothing here is collected, and nothing imports a test_*.py.

- paths: ROOT of the checkout and the shared data folder
- imagegen: generated images (classes, a new class's style, edited copies) and datasets
- models: the tiny trained models behind the conftest fixtures, and models' helpers
- storage: Storage fixtures for the test_storage_*.py modules (a pytest plugin)
- standin_server, telegram_standin, discord_standin: the platform stand-ins and their harnesses
- telegram_bot, discord_bot: a real bot against a stand-in (people, settings, fixtures)
- console: the web console's settings, an API client and fixtures
- browser: how tests launch Debian's Chromium
- processes: the probe script that runs `memebot run` as a real process
"""
