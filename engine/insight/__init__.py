"""What happened: task statistics, version variables, metrics, the audit trail."""
