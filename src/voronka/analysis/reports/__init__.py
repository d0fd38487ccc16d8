"""Reports written to files: the statistics workbook."""
