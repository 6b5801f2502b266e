"""The knowledge graph: store, sources, extraction, resolution, reasoning.

``kg`` knows nothing of ``chatbot`` or ``learners``.
"""
