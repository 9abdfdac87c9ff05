"""Domain operations (datasets, model artifacts, runs, submissions), so views and tasks stay thin."""
