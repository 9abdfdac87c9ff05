"""Hallucination probes: probe sets built from a task's test cases (construct), their runs and scores."""
