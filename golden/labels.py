"""The 12 keyword-spotting classes, in logit order (the checkpoint stores its own copy)."""

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
LABELS = KEYWORDS + ("silence", "unknown")
