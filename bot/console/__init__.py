"""The local web console: a third thin adapter over `bot.core` (aiohttp, plain HTML/CSS/JS).

Anyone who can reach it may upload memes and look; admin actions (correct, confirm, add a
label, retrain, roll back) need the console admin token. See `bot.console.app`.
"""
