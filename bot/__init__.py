"""memebot application: bot core, platform adapters and the `memebot` command line."""
