"""`ringsync api`: the mirror served to people and programs — SCIM 2.0 for identity tools, a JSON
API for automation, and the metrics. It reads the store and queues work; it is never the edge."""
