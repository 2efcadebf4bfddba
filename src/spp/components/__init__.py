"""Components: burst transforms (forward, merge, classifier, mirror)."""
