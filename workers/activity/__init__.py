"""Activity: who made or answered a call, from the account's call log (`last_activity_at`).

fold (pure: records → latest counting call per extension), store (forward-only writes, the scan's
watermark and resumable cursor), scan (the job and the daily cron), report (licence candidates).
"""
