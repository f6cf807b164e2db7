"""Intake's use cases, one collaborator per concern: referrals, erasure, LBU job offers and
their timer, the employment registry exchange. Each gets the application's store (to
load and save aggregates, always through `store.save`) and what else it needs; none
speaks HTTP: refusals are the kinds of `contracts.problems`, results plain dicts or an
`Answer`."""
