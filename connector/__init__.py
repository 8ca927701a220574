"""plain-crm-sync: keeps CRMs in step with Plain customer groups."""

__version__ = "0.1.0"
