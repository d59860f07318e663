"""The console at `/` of `ringsync api`: server-rendered pages a person keeps open.

Per account: subscription health and remaining life, last notification and lag, held resync
plans (approve, naming the approver), recent transitions, rate-limit budgets and a chart of
notifications and changes per minute; for the deployment: the queue and the dead letters (replay).
Templates and assets ship in this package (no build step, nothing from a CDN); the page refreshes
itself. Login with RINGSYNC_API_TOKEN opens a session (see `api.console.session`).
"""
