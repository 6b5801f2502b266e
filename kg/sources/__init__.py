"""Sources: files, folders, URLs and chat turns, normalised to :class:`Document`.

Every loader returns plain text plus, for conversations, the turns that make it up, so
the extractor never sees markup and provenance can point at character offsets.
"""

from kg.sources.document import Document, Turn

__all__ = ["Document", "Turn"]
