"""aiogram glue: middlewares, callback data, keyboards, rendering, FSM storage, outbox sender."""
