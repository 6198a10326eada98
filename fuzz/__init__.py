"""Coverage-guided fuzzing of every decoder pvflow owns (``make fuzz``)."""
