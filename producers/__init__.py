"""Sources of entity changes (F&O, Dataverse), the publisher, checkpoints and the initial sync."""
