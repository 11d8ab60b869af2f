"""Use cases. Nothing here imports aiogram: Telegram is reached through the outbox."""
