"""Full reconciliation: list every extension and reconcile it through the same decision;
deletions only from a complete listing, mass deprovisioning held for approval.
"""
