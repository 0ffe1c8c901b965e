"""Notifications: clients' webhook subscriptions, the durable outbox of events, and their signed delivery."""
