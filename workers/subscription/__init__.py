"""Our webhook subscription: the plan (pure: create, renew, update or re-create), its rows
and gaps in the store, and the renewal job that carries the plan out.
"""
