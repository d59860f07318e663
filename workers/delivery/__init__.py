"""Outbox delivery: lifecycle events written beside each user change, sent downstream signed
(Standard Webhooks) or to an in-process hook; in order, retried, dead-lettered, replayable.
"""
