"""Actions: suspend, deprovision and reactivate users in RingCentral — proposed, approved by a
person (or, for suspends, a written policy), executed once by a worker, audited as events.

The public API (callers hold the `Deps` of the action's account; see `workers.context`):

- `gate.propose(d, kind, extension_id, *, reason, by, facts=None) -> Action`: record a proposal
  (`action.proposed`); refused at once with `store.Refused` for a protected or non-User extension
  or one not in the kind's starting state, `store.NotFound` for a user not mirrored. With
  `RINGSYNC_ACTIONS_AUTO_APPROVE=suspend` a suspend is approved by `"policy"` in the same
  transaction and queued. Bulk callers (the licence report) pass `facts=await protection(d)`.
- `gate.preview(d, kind, extension_id) -> Preview`: the preflight, recording nothing.
- `gate.find_extension(d, account_id, email) -> str`: a mirrored user's extension id by email.
- `gate.approve(d, action_id, by)`, `gate.reject(...)`, `gate.cancel(...) -> Action`: decide.
  `store.SameApprover` when the approver proposed it (nothing changes), `store.Finished` when
  it is no longer proposed (cancel also takes an approved one), `store.NotFound`.
- `ActionStore(store).list(account_id=None, state=None, extension_id=None)`, `.get(id)`,
  `.counts(max_per_hour, account_id=None)` (`{state: n, ..., "waiting": n}`): read side.
- `action.Action` and its `as_json()`: the action as events, `--json` and `/v1` show it.

Modules: `decide` (pure: preflight, execution verdict, approval rule, hourly cap), `action` (the
record), `store` (rows, one transaction each), `audit` (the `action.*` outbox events),
`protection` (operator and credential owner), `gate` (the calls above), `run` (the execution
job and the sweep), `deletes` (bulk deletes, 50 a call), `outcome` (mirror and record).
"""
