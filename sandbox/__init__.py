"""Local twins of the real services: a Service Bus emulator, F&O and Dataverse APIs, a workload.

Imports nothing of the pipeline, so that it could be split out as a package of its own.
"""
