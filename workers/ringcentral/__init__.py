"""The RingCentral API client: a session per process, and the token and rate-limit budget
every process shares through Redis; the endpoint groups, the errors, the typed resources.
"""
