"""The diff page's template, script and style sheet, inlined by ``tracekit/diff/html.py``."""
