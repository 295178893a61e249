"""Consumers: receive an area's events, transform them and apply them to the other system."""
