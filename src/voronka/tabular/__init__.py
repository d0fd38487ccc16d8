"""Reading tables from files, shared by the importers and the statistics' inputs.

Kernel code: CSV/XLSX/HTML readers, cell cleaning and parsing, and the report of an import (what
was created, updated, rejected and why). It knows nothing of deals' storage or of analysis.
"""
