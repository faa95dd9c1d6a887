"""Simulated pilots: the real service answering members whose responses follow a known model.

`pilot.simulate` runs one (decision log, events and each arm's truth); `truth.policy_truth`
gives the TRUE rates of any lists shown to members; `features.synthetic.response.ResponseModel`
the probabilities behind both. (Nothing is imported here: `perkrank` builds its parser fast.)
"""
