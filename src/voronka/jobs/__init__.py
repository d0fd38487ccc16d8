"""Background work with its state in the database: syncs, alerts, digests, the stored diagnosis.

``store`` (the job rows, leases), ``registry`` (what each kind of job does), ``worker`` (the loop
that ``voronka serve`` runs beside the web app and ``voronka worker`` runs alone).
"""
