"""Where a :class:`~pvflow.bluesky.writer.BackgroundWriter` delivers documents.

A target is any callable ``target(name, doc)`` that raises when it could not store the
document (an optional ``close()`` is called when the writer closes). A ``start`` document
means "this run begins from scratch": a target that already holds part of that run replaces
it, so a run replayed from a backup ends up stored exactly once.
"""
