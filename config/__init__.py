"""Configuration every layer may read: one Settings object from the environment and `.env`."""
