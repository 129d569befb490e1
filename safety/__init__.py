"""Child safety: what a child says and what the storyteller is about to say, checked before it counts."""
