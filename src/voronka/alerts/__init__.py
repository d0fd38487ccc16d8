"""Alerts and digests: what the team should hear about while it can still act, and how it gets there.

``model`` (pure: events, who wants what, quiet hours, retries), ``config`` (an account's thresholds,
channels and preferences), ``events`` (what is due now, found in SQL), ``outbox`` (each message
stored once under a unique key, then delivered), ``channels`` (Telegram, e-mail, webhook),
``digest`` (the daily and weekly summaries). docs/alerts.md says what each alert means.
"""
