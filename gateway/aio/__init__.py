"""asyncio helpers every background loop shares (search runner, reconciler, tracker, webhook worker)."""
