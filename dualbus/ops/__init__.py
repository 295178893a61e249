"""Operations on a running pipeline: dead-letters, status, pause and resume, alerts, reconcile."""
