"""dualbus: keeps Dynamics 365 Finance and Operations and Dataverse in step through Azure Service Bus."""

__version__ = "0.1.0"
