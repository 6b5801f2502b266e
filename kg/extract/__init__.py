"""Extraction: documents → candidate triples with sentence spans and confidences.

Extractors implement :class:`kg.extract.base.Extractor`; the spaCy dependency-pattern
extractor is the offline default, an LLM extractor is optional.
"""
