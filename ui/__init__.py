"""Windows of fluoro (PySide6 + pyqtgraph). The only package that may import Qt or pyqtgraph.

The live guidance window and the dose review window are built in their own issues; until then
``fluoro run`` runs headless.
"""
