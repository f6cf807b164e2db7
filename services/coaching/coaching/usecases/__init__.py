"""Coaching's use cases: commands on a plan (by a coach, a provider's webhook or the
scheduler) and the queries behind the lists. Each gets the application's store (to load
and save plans, always through `store.save`) and what else it needs; none speaks HTTP:
refusals are the kinds of `contracts.problems`, results plain dicts or an `Answer`."""
