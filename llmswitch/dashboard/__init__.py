"""Rankings and the dashboard: usage by model, lab, origin, weights and task category; spend and savings."""
