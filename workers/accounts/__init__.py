"""The RingCentral accounts one deployment mirrors: their rows, their encrypted credentials, and
the per-account dependencies each job acts with (token, budget, locks, subscription)."""
