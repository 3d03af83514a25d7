"""Cron expressions and the scheduler that fires crontabs."""
