"""Learning from the graph: QA pairs, replay, fine-tuning recipes, refresh (later issues)."""
