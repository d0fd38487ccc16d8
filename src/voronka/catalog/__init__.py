"""Built-in knowledge: industry pipeline templates (and, later, the CRM catalogue)."""
